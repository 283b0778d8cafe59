//! Files that hold secrets (the token signing key, the personal-data key): written
//! readable by their owner only (0600), and refused when group or others may access
//! them, the way OpenSSH treats a private key file. The folders they are made in are
//! their owner's only too (0700).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error(
        "{} holds a secret key but group or others may access it (mode {mode:04o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretFileError + '_ {
    move |source| SecretFileError::Io { path: path.to_owned(), source }
}

/// The file's text, `None` when it does not exist; refused when it is not private.
pub fn read(path: &Path) -> Result<Option<String>, SecretFileError> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretFileError::Exposed { path: path.to_owned(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    std::fs::read_to_string(path).map(Some).map_err(io(path))
}

/// Creates `dir` and its missing parents, each only its owner may enter (0700); one
/// that exists keeps its mode.
pub fn create_private_dir(dir: &Path) -> Result<(), SecretFileError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))
}

/// Creates an empty file only its owner may read and write, unless `path` exists.
pub fn create_private(path: &Path) -> Result<(), SecretFileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// Writes `contents` to a new file only its owner may read, then moves it into place,
/// so the secret is never readable by others, not even for a moment.
pub fn write(path: &Path, contents: &str) -> Result<(), SecretFileError> {
    let staging = path.with_extension("tmp");
    let _ = std::fs::remove_file(&staging);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&staging).map_err(io(&staging))?;
    file.write_all(contents.as_bytes()).and_then(|()| file.sync_all()).map_err(io(&staging))?;
    std::fs::rename(&staging, path).map_err(io(path))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn dir() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("goodsmall-secret-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn written_secrets_are_private_and_read_back() {
        let dir = dir();
        let path = dir.join("data.key");
        assert!(read(&path).unwrap().is_none(), "absent");
        write(&path, "s3cret").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read(&path).unwrap().as_deref(), Some("s3cret"));
        assert!(!path.with_extension("tmp").exists(), "nothing is left behind");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_secret_others_may_read_is_refused_naming_the_file() {
        let dir = dir();
        let path = dir.join("jwt-ed25519.key");
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::write(&path, "s3cret").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = read(&path).unwrap_err();
            assert!(matches!(err, SecretFileError::Exposed { mode: m, .. } if m == mode), "{mode:o}: {err}");
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()) && message.contains("chmod 600"), "{message}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some("s3cret"), "owner-only is fine");
        let _ = std::fs::remove_dir_all(dir);
    }
}

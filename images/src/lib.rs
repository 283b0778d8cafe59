//! The deployables' container images as a container runtime sees them.
//!
//! `scripts/images.sh` builds `images/Containerfile` into OCI archives (an OCI image
//! layout in a tar). [`Image::unpack`] reads one the way a runtime does: `index.json`
//! names the manifest, the manifest the config and the layers, every blob is checked
//! against its digest, and the layers are applied in order to a root filesystem.
//! [`Image::command`] then starts the image's entrypoint from that root as the image's
//! user (`chroot --userspec`), with the image's environment and nothing of the
//! caller's, so a test sees what a pod would run.

use std::{
    collections::BTreeMap,
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const LAYERS: [&str; 2] = ["application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip"];

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ConfigFile {
    architecture: String,
    os: String,
    #[serde(default)]
    config: ImageConfig,
}

/// The run-time part of an image's config (`config` in the OCI image config).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    pub user: String,
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: String,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// An unpacked image: its root filesystem and its config.
#[derive(Debug)]
pub struct Image {
    pub root: PathBuf,
    pub config: ImageConfig,
    pub architecture: String,
    pub os: String,
    /// Layers applied, in order.
    pub layers: usize,
    /// The index entry's annotations: the names runtimes import the image under
    /// (`org.opencontainers.image.ref.name`, containerd's `io.containerd.image.name`).
    pub names: BTreeMap<String, String>,
}

impl Image {
    /// Unpacks the OCI archive `archive` into `dest` (`dest/rootfs` is the root).
    pub fn unpack(archive: &Path, dest: &Path) -> Result<Image> {
        let layout = dest.join("layout");
        let root = dest.join("rootfs");
        fs::create_dir_all(&layout)?;
        fs::create_dir_all(&root)?;
        tar(archive, &layout)?;
        let index: Index = serde_json::from_slice(&fs::read(layout.join("index.json")).context("index.json")?)?;
        let [manifest] = index.manifests.as_slice() else {
            bail!("{} holds {} images, not one", archive.display(), index.manifests.len())
        };
        ensure!(manifest.media_type == MANIFEST, "manifest type {}", manifest.media_type);
        let names = manifest.annotations.clone();
        let manifest: Manifest = serde_json::from_slice(&blob(&layout, &manifest.digest)?)?;
        let config: ConfigFile = serde_json::from_slice(&blob(&layout, &manifest.config.digest)?)?;
        for layer in &manifest.layers {
            ensure!(LAYERS.contains(&layer.media_type.as_str()), "layer type {}", layer.media_type);
            verify(&layout, &layer.digest)?;
            tar(&blob_path(&layout, &layer.digest)?, &root)?;
            // These images only add files; a whiteout would mean a layer deletes one.
            if let Some(whiteout) =
                walk(&root)?.into_iter().find(|p| p.rsplit('/').next().is_some_and(|n| n.starts_with(".wh.")))
            {
                bail!("layer {} has a whiteout ({whiteout}), which these images never need", layer.digest);
            }
        }
        fs::remove_dir_all(&layout)?;
        Ok(Image {
            root,
            config: config.config,
            architecture: config.architecture,
            os: config.os,
            layers: manifest.layers.len(),
            names,
        })
    }

    /// The image's environment (`Env`) as pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config.env.iter().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    /// The numeric user and group the image runs as (`User`, names looked up in the
    /// image's own /etc/passwd).
    pub fn user(&self) -> Result<(u32, u32)> {
        let (user, group) = self.config.user.split_once(':').unwrap_or((self.config.user.as_str(), ""));
        ensure!(!user.is_empty(), "the image sets no user, so it would run as root");
        if let Ok(uid) = user.parse::<u32>() {
            let gid = if group.is_empty() { uid } else { group.parse().context("a numeric group")? };
            return Ok((uid, gid));
        }
        let passwd = fs::read_to_string(self.root.join("etc/passwd")).context("the image's /etc/passwd")?;
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&user))
            .context("the user in /etc/passwd")?;
        Ok((entry[2].parse()?, entry[3].parse()?))
    }

    /// Every path in the root filesystem, relative to it (`usr/local/bin/x`).
    pub fn files(&self) -> Result<Vec<String>> {
        walk(&self.root)
    }

    /// Copies the host's /etc/hosts and /etc/resolv.conf in, as a runtime mounts the
    /// pod's.
    pub fn provide_runtime_files(&self) -> Result<()> {
        for file in ["etc/hosts", "etc/resolv.conf"] {
            let host = Path::new("/").join(file);
            if host.exists() {
                fs::copy(&host, self.root.join(file))?;
            }
        }
        Ok(())
    }

    /// The entrypoint (with `args` in place of `Cmd` when given) started from the
    /// image's root as the image's user, with only the image's environment; add the
    /// pod's settings with `.env(...)`.
    pub fn command(&self, args: &[&str]) -> Result<Command> {
        ensure!(
            matches!(self.config.working_dir.as_str(), "" | "/"),
            "working directory {} (only / is run here)",
            self.config.working_dir
        );
        let (uid, gid) = self.user()?;
        let mut argv: Vec<String> = self.config.entrypoint.clone().unwrap_or_default();
        if args.is_empty() {
            argv.extend(self.config.cmd.clone().unwrap_or_default());
        } else {
            argv.extend(args.iter().map(|a| a.to_string()));
        }
        ensure!(!argv.is_empty(), "the image has no entrypoint or command");
        let mut command = Command::new(chroot()?);
        command.arg(format!("--userspec={uid}:{gid}")).arg(&self.root).args(argv).env_clear().envs(self.env());
        Ok(command)
    }
}

fn chroot() -> Result<&'static str> {
    ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("chroot (coreutils) is not installed: apt-get install -y coreutils")
}

fn tar(archive: &Path, into: &Path) -> Result<()> {
    // GNU tar finds the compression itself; as root it keeps modes and (numeric) owners.
    let output = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .context("tar runs")?;
    ensure!(output.status.success(), "tar -xf {}: {}", archive.display(), String::from_utf8_lossy(&output.stderr));
    Ok(())
}

fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf> {
    let hex = digest.strip_prefix("sha256:").with_context(|| format!("digest {digest} is not sha256"))?;
    ensure!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "digest {digest}");
    Ok(layout.join("blobs/sha256").join(hex))
}

/// Checks that the blob's content has its digest.
fn verify(layout: &Path, digest: &str) -> Result<()> {
    let path = blob_path(layout, digest)?;
    let mut file = fs::File::open(&path).with_context(|| format!("blob {digest}"))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let actual = format!("sha256:{:x}", hasher.finalize());
    ensure!(actual == digest, "blob {digest} has digest {actual}");
    Ok(())
}

fn blob(layout: &Path, digest: &str) -> Result<Vec<u8>> {
    verify(layout, digest)?;
    Ok(fs::read(blob_path(layout, digest)?)?)
}

fn walk(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            found.push(path.strip_prefix(root)?.to_string_lossy().into_owned());
            if entry.file_type()?.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

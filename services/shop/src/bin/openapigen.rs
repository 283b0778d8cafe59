//! Writes the separate services' whole API document, which each of them serves at
//! `/api/openapi.json`, to `docs/openapi.json` (or the path given).

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json").into());
    std::fs::write(&path, goodsmall_shop::openapi::whole_json())?;
    eprintln!("wrote {path}");
    Ok(())
}

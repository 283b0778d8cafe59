//! Writes the FlashSale CRD to `crds/flashsale.yaml` (or to the path given).

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/flashsale.yaml").into());
    std::fs::write(&path, goodsmall_operator::crd::crd_yaml())?;
    eprintln!("wrote {path}");
    Ok(())
}

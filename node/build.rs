//! Finds the font the custody receipt is set in (`src/export/receipt.rs`) and copies it
//! into the build, so every node of a cluster embeds the same font and renders a
//! package's receipt byte for byte alike. WenQuanYi Micro Hei covers Latin and Chinese;
//! `ops/setup.sh` installs it (Debian package fonts-wqy-microhei). `CUSTOS_RECEIPT_FONT`
//! names another TrueType file or collection (its first face is used).

use std::path::PathBuf;

const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

fn main() {
    println!("cargo:rerun-if-env-changed=CUSTOS_RECEIPT_FONT");
    let font = std::env::var("CUSTOS_RECEIPT_FONT").unwrap_or_else(|_| DEFAULT_FONT.to_string());
    println!("cargo:rerun-if-changed={font}");
    let bytes = std::fs::read(&font).unwrap_or_else(|e| {
        panic!(
            "the custody receipt's font {font} cannot be read ({e}): run ops/setup.sh (it installs the Debian \
             package fonts-wqy-microhei), or set CUSTOS_RECEIPT_FONT to a TrueType font with Latin and Chinese"
        )
    });
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("receipt-font.ttc");
    std::fs::write(&out, bytes).expect("write the receipt font into OUT_DIR");
}

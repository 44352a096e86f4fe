//! Builds the demo service (`src/demo_service/main.rs`, std only) as a static binary that
//! `rollout` embeds and puts into a `FROM scratch` image when a demo environment needs it.
//! The image tag is a digest of the source and the compiler, so a changed demo service gets
//! a new image, and the same source gives the same tag on every machine.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "src/demo_service/main.rs";
const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("rollout-demo");
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let status = Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "-C",
            "opt-level=s",
            "-C",
            "strip=symbols",
            "-C",
        ])
        .arg("target-feature=+crt-static")
        .args(["--target", TARGET, "--crate-name", "rollout_demo"])
        .arg(SOURCE)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run rustc for the demo service");
    assert!(status.success(), "building the demo service failed");

    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .map(|output| output.stdout)
        .unwrap_or_default();
    let source = std::fs::read(SOURCE).expect("read the demo service source");
    // FNV-1a: a stable digest, no crate needed in the build script.
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in source.iter().chain(&version) {
        digest ^= u64::from(*byte);
        digest = digest.wrapping_mul(0x0100_0000_01b3);
    }
    println!("cargo:rustc-env=ROLLOUT_DEMO_DIGEST={digest:016x}");
    println!("cargo:rustc-env=ROLLOUT_DEMO_BINARY={}", out.display());
}

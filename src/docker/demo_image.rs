//! The demo image: a `FROM scratch` image holding the demo service binary, built locally so
//! that a demo needs no registry.
//!
//! Owns the build context (an in-memory tar with a `Dockerfile` and the binary that
//! `build.rs` compiles from `src/demo_service/main.rs`) and the decision to build it when
//! missing. It must not pull anything, and it builds only through the [`Runtime`] trait.

use std::collections::{BTreeMap, BTreeSet};

use super::{DockerResult, Runtime};
use crate::demo;

/// The label that marks the demo image, so that it can be found and cleaned up.
pub const LABEL: &str = "io.rollout.demo-image";

/// The demo service binary, compiled by `build.rs` as a static executable.
const BINARY: &[u8] = include_bytes!(env!("ROLLOUT_DEMO_BINARY"));

/// The binary's name in the build context.
const BINARY_NAME: &str = "rollout-demo";

/// `FROM scratch`, the binary at [`demo::BINARY_PATH`] as the entry point.
fn dockerfile() -> String {
    let path = demo::BINARY_PATH;
    format!("FROM scratch\nCOPY {BINARY_NAME} {path}\nENTRYPOINT [\"{path}\"]\n")
}

/// The build context of the demo image: a tar with the `Dockerfile` and the binary.
pub fn build_context() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, "Dockerfile", dockerfile().as_bytes(), 0o644);
    append(&mut builder, BINARY_NAME, BINARY, 0o755);
    builder
        .into_inner()
        .expect("writing a tar into memory cannot fail")
}

fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, contents: &[u8], mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(mode);
    // A fixed time keeps the context identical from build to build.
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    builder
        .append_data(&mut header, path, contents)
        .expect("writing a tar into memory cannot fail");
}

/// Builds the demo image unless `images` (the `repository:tag`s present on the engine)
/// already holds it. Returns whether it built.
pub async fn ensure(
    runtime: &impl Runtime,
    images: &BTreeSet<String>,
    tag: &str,
) -> DockerResult<bool> {
    if images.contains(tag) {
        return Ok(false);
    }
    let labels = BTreeMap::from([(LABEL.to_owned(), "1".to_owned())]);
    runtime.build_image(tag, build_context(), &labels).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_context_holds_the_dockerfile_and_an_executable_binary() {
        let context = build_context();
        let mut archive = tar::Archive::new(context.as_slice());
        let mut entries = BTreeMap::new();
        for entry in archive.entries().expect("a readable tar") {
            let mut entry = entry.expect("a readable entry");
            let path = entry.path().expect("a path").to_string_lossy().into_owned();
            let mode = entry.header().mode().expect("a mode");
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).expect("readable contents");
            entries.insert(path, (mode, contents));
        }
        assert_eq!(
            entries.keys().collect::<Vec<_>>(),
            ["Dockerfile", "rollout-demo"]
        );

        let (_, dockerfile) = &entries["Dockerfile"];
        let dockerfile = String::from_utf8_lossy(dockerfile);
        assert!(dockerfile.starts_with("FROM scratch\n"), "{dockerfile}");
        assert!(dockerfile.contains(&format!("COPY rollout-demo {}", demo::BINARY_PATH)));
        assert!(dockerfile.contains(&format!("ENTRYPOINT [\"{}\"]", demo::BINARY_PATH)));

        let (mode, binary) = &entries["rollout-demo"];
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(binary.as_slice(), BINARY);
        assert!(
            binary.starts_with(b"\x7fELF"),
            "the demo binary is an ELF executable"
        );
    }

    #[test]
    fn the_context_is_the_same_every_time() {
        assert_eq!(build_context(), build_context());
    }
}

//! `rollout docs [--check]`: write (or check) `docs/ports.md`, generated from the config.

use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, load_config};

pub fn run(global: &GlobalOptions, check: bool, printer: &Printer) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    let generated = rollout::report::ports_markdown(&config);
    let path = global.dir.join("docs").join("ports.md");
    let current = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(CliError::File {
                action: "read",
                path,
                source,
            });
        }
    };
    let fresh = current.as_deref() == Some(generated.as_str());
    if check {
        if !fresh {
            return Err(CliError::StaleDocs { path });
        }
        printer.message(&format!("`{}` is up to date", path.display()));
        return Ok(ExitStatus::Success);
    }
    if fresh {
        printer.message(&format!("`{}` is already up to date", path.display()));
        return Ok(ExitStatus::Success);
    }
    let write = |path: &std::path::Path| -> std::io::Result<()> {
        std::fs::create_dir_all(path.parent().expect("docs/ports.md has a parent"))?;
        let temporary = path.with_extension("md.tmp");
        std::fs::write(&temporary, &generated)?;
        std::fs::rename(&temporary, path)
    };
    write(&path).map_err(|source| CliError::File {
        action: "write",
        path: path.clone(),
        source,
    })?;
    printer.message(&format!("wrote `{}`", path.display()));
    Ok(ExitStatus::Success)
}

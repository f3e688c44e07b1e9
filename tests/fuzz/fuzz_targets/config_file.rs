//! Any text as the --config file: loading ends in a Config or in an error
//! that is one line with status 2, as the binary prints it.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trapstream::cli::Cli;
use trapstream::config::Config;

/// One file per fuzzing process, written per input and removed after it
/// (libFuzzer exits without running destructors): Config has no entry that
/// takes text, and tmpfs keeps the round trip cheap.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir =
            if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
        dir.join(format!("trapstream-fuzz-config-{}.toml", std::process::id()))
    })
}

fuzz_target!(|text: &str| {
    let path = path();
    std::fs::write(path, text).expect("write the config file");
    let cli = Cli { config: Some(path.clone()), ..Default::default() };
    let loaded = Config::load(&cli);
    let _ = std::fs::remove_file(path);
    if let Err(err) = loaded {
        let shown = err.to_string();
        assert!(!shown.is_empty() && !shown.contains(['\n', '\r']), "error is not one line: {shown:?}");
        assert_eq!(err.exit_code(), 2, "not a usage error: {shown}");
    }
});

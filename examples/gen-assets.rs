//! Writes the man page and shell completions for the Debian package from the
//! clap definition, so they cannot drift from the flags.
//!
//!     cargo run --example gen-assets -- OUT_DIR
//!
//! OUT_DIR gets trapstream.1, trapstream-top.1, trapstream.bash, _trapstream (zsh) and
//! trapstream.fish.

use std::path::PathBuf;
use std::process::ExitCode;

use clap_complete::Shell;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out_dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: gen-assets OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(PathBuf::from(out_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gen-assets: {err}");
            ExitCode::FAILURE
        }
    }
}

const FILES_SECTION: &str = r#".SH FILES
.TP
\fI/etc/trapstream/trapstream.toml\fR
Settings of the trapstream service (\fBsystemctl enable \-\-now trapstream\fR),
read with \fB\-\-config\fR. Keys are the long flags with \fB_\fR instead of
\fB\-\fR; flags override them. The service does not start until
\fBcollector_ip\fR and \fBcollector_port\fR are set.
.TP
\fI/sys/kernel/btf/vmlinux\fR
The running kernel's BTF, needed to load the BPF programs.
"#;

fn generate(out_dir: PathBuf) -> std::io::Result<()> {
    std::fs::create_dir_all(&out_dir)?;
    let mut cmd = trapstream::cli::command();

    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    man.render_extra_section(&mut page)?;
    // What the flags cannot tell: where the packaged service keeps its settings.
    page.extend_from_slice(FILES_SECTION.as_bytes());
    man.render_version_section(&mut page)?;
    let man_path = out_dir.join("trapstream.1");
    std::fs::write(&man_path, page)?;
    println!("{}", man_path.display());

    // `trapstream top` has a page of its own, which trapstream.1 names.
    if let Some(top) = cmd.find_subcommand("top") {
        let top = top.clone().name("trapstream-top").bin_name("trapstream top");
        let mut page = Vec::new();
        clap_mangen::Man::new(top).render(&mut page)?;
        let path = out_dir.join("trapstream-top.1");
        std::fs::write(&path, page)?;
        println!("{}", path.display());
    }

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd, "trapstream", &out_dir)?;
        println!("{}", path.display());
    }
    Ok(())
}

//! `cutover completions` and `cutover man`: made from the command line's own definition, so
//! that they never drift from it.

use std::io::Write;

use std::path::PathBuf;

use clap::Args;

use crate::output::Exit;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write cutover.1 and a cutover-COMMAND.1 for each command into this directory
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The script for `args.shell`, of the command line `cli`.
pub fn completions(args: &CompletionsArgs, mut cli: clap::Command) -> Exit {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "cutover", &mut script);
    // A closed pipe (`| head`) is no failure of the script.
    let _ = std::io::stdout().write_all(&script);
    Exit::Done
}

/// The main page on standard output; with `--dir`, it and one page per command as files there.
pub fn man(args: &ManArgs, mut cli: clap::Command) -> anyhow::Result<Exit> {
    cli.build();
    let Some(dir) = &args.dir else {
        clap_mangen::Man::new(cli).render(&mut std::io::stdout())?;
        return Ok(Exit::Done);
    };
    std::fs::create_dir_all(dir)?;
    let pages = std::iter::once(cli.clone()).chain(
        cli.get_subcommands()
            .filter(|c| c.get_name() != "help")
            .map(|c| {
                let name = format!("cutover-{}", c.get_name());
                c.clone().name(name)
            }),
    );
    for page in pages {
        let path = dir.join(format!("{}.1", page.get_name()));
        let mut file = std::fs::File::create(&path)?;
        clap_mangen::Man::new(page).render(&mut file)?;
        file.flush()?;
    }
    Ok(Exit::Done)
}

//! `cutover completions` and `cutover man`: made from the command line's own definition, so
//! that they never drift from it.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::output::Exit;

pub fn completions(args: &CompletionsArgs) -> Exit {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "cutover",
        &mut std::io::stdout(),
    );
    Exit::Done
}

/// The main page on standard output; with `--dir`, it and one page per command as files there.
pub fn man(args: &ManArgs) -> anyhow::Result<Exit> {
    let mut cli = Cli::command();
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

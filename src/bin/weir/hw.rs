//! `weir hw show | check | gen | propose | snapshot`: the machine as hardware teams see it, a layout file
//! checked against it, the configs generated from that file, and a proposed layout.
//!
//! Every command reads `/sys` and `/proc` under `--root` (default `/`): point it at a fixture tree or at the
//! unpacked `weir hw snapshot` of another machine.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use weir_hw::generate::{self, Target};
use weir_hw::layout::{Layout, Problem, Severity};
use weir_hw::propose::{self, Request};
use weir_hw::{Machine, report};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum HwCommand {
    /// The topology as a tree in lstopo's vocabulary (Package, NUMANode, L3, Core, PU, PCI), with a layout's
    /// roles on each PU when `--layout` is given.
    Show(ShowArgs),
    /// Check a layout file against the machine without starting anything: exit 0 when it has no error, 1 with
    /// the list of problems (file:line:col, what, fix).
    Check(CheckArgs),
    /// Generate, from a layout file, the DPDK EAL arguments, a systemd fragment, the kernel command line or an
    /// IRQ-affinity script.
    Gen(GenArgs),
    /// Propose a layout for this machine (NIC-local rx cores, housekeeping on core 0, SMT siblings idle) that
    /// passes its own check.
    Propose(ProposeArgs),
    /// Copy the /sys and /proc files discovery reads into DIR (then `tar czf` it and send it: `--root DIR`
    /// reads it back on any machine).
    Snapshot(SnapshotArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct RootArg {
    /// Read /sys and /proc under this directory instead of the live machine.
    #[arg(long, default_value = "/", value_name = "DIR")]
    root: PathBuf,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    root: RootArg,
    /// Overlay this layout's roles.
    #[arg(long)]
    layout: Option<PathBuf>,
    /// JSON instead of the tree.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// The layout file.
    layout: PathBuf,
    #[command(flatten)]
    root: RootArg,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct GenArgs {
    /// The layout file.
    layout: PathBuf,
    /// What to generate: eal, systemd, kernel-cmdline, irq.
    #[arg(long)]
    target: String,
    #[command(flatten)]
    root: RootArg,
    /// Generate even when the layout has errors.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ProposeArgs {
    /// NICs (PCI address or interface name), one rx core each.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    nics: Vec<String>,
    /// DAG worker threads.
    #[arg(long, default_value_t = 0, value_name = "N")]
    dag_workers: usize,
    /// Deployment name.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    root: RootArg,
    /// Write the layout here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SnapshotArgs {
    /// Where to copy the files (created).
    out: PathBuf,
    #[command(flatten)]
    root: RootArg,
}

pub(crate) fn run(cmd: HwCommand) -> ExitCode {
    let result = match cmd {
        HwCommand::Show(args) => show(args),
        HwCommand::Check(args) => check(args),
        HwCommand::Gen(args) => gen_config(args),
        HwCommand::Propose(args) => propose_layout(args),
        HwCommand::Snapshot(args) => snapshot(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weir hw: {e}");
            ExitCode::from(2)
        }
    }
}

fn discover(root: &Path) -> Result<Machine, String> {
    Machine::discover(root).map_err(|e| e.to_string())
}

/// The layout, or its parse problems printed and exit 1.
fn load_layout(path: &Path) -> Result<Result<Layout, ExitCode>, String> {
    match Layout::load(path).map_err(|e| format!("{}: {e}", path.display()))? {
        Ok(layout) => Ok(Ok(layout)),
        Err(problems) => {
            print_problems(&problems);
            Ok(Err(ExitCode::from(1)))
        }
    }
}

fn print_problems(problems: &[Problem]) {
    let mut err = io::stderr().lock();
    for p in problems {
        let _ = writeln!(err, "{p}");
    }
    let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
    let _ = writeln!(err, "{} error(s), {} warning(s)", errors, problems.len() - errors);
}

/// A layout file checked against this machine, its warnings printed unless `quiet`; any error (or an unreadable
/// file) is the message to exit 2 with: nothing starts from a layout that fails its check.
pub(crate) fn validated_layout(path: &Path, quiet: bool) -> Result<weir::pipeline::Validated, String> {
    let layout = Layout::load(path).map_err(|e| format!("{}: {e}", path.display()))?.map_err(|p| problem_list(&p))?;
    let machine = discover(Path::new("/"))?;
    let validated = weir::pipeline::Validated::new(layout, machine).map_err(|p| problem_list(&p))?;
    if !quiet {
        for w in validated.warnings() {
            eprintln!("{w}");
        }
    }
    Ok(validated)
}

/// A failed check as one error message, for commands that start from a layout.
pub(crate) fn problem_list(problems: &[Problem]) -> String {
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("the layout does not pass its check; nothing started:\n{}", list.join("\n"))
}

fn show(args: ShowArgs) -> Result<ExitCode, String> {
    let machine = discover(&args.root.root)?;
    let layout = match &args.layout {
        Some(path) => match load_layout(path)? {
            Ok(layout) => Some(layout),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let out = if args.json {
        let mut s =
            serde_json::to_string_pretty(&report::json(&machine, layout.as_ref())).map_err(|e| e.to_string())?;
        s.push('\n');
        s
    } else {
        report::text(&machine, layout.as_ref())
    };
    io::stdout().lock().write_all(out.as_bytes()).map_err(|e| format!("stdout: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn check(args: CheckArgs) -> Result<ExitCode, String> {
    let machine = discover(&args.root.root)?;
    let layout = match load_layout(&args.layout)? {
        Ok(layout) => layout,
        Err(code) => return Ok(code),
    };
    let problems = weir_hw::layout::check(&layout, &machine);
    let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
    if problems.is_empty() {
        println!(
            "{}: ok ({} pinned threads, {} NICs, {} rings)",
            args.layout.display(),
            layout.roles().len(),
            layout.nics.len(),
            layout.rings.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    print_problems(&problems);
    Ok(if errors > 0 || args.deny_warnings { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn gen_config(args: GenArgs) -> Result<ExitCode, String> {
    let target: Target = args.target.parse().map_err(|e| format!("--target {}: {e}", args.target))?;
    let machine = discover(&args.root.root)?;
    let layout = match load_layout(&args.layout)? {
        Ok(layout) => layout,
        Err(code) => return Ok(code),
    };
    let problems = weir_hw::layout::check(&layout, &machine);
    if problems.iter().any(|p| p.severity == Severity::Error) && !args.force {
        print_problems(&problems);
        eprintln!("weir hw gen: not generating from a layout with errors (--force to do it anyway)");
        return Ok(ExitCode::from(1));
    }
    let text = generate::generate(target, &layout, &machine).map_err(|e| e.to_string())?;
    io::stdout().lock().write_all(text.as_bytes()).map_err(|e| format!("stdout: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn propose_layout(args: ProposeArgs) -> Result<ExitCode, String> {
    let machine = discover(&args.root.root)?;
    let request = Request { nics: args.nics, dag_workers: args.dag_workers, name: args.name };
    let proposal = propose::propose(&machine, &request)?;
    match &args.out {
        Some(path) => std::fs::write(path, &proposal.toml).map_err(|e| format!("{}: {e}", path.display()))?,
        None => io::stdout().lock().write_all(proposal.toml.as_bytes()).map_err(|e| format!("stdout: {e}"))?,
    }
    if !proposal.warnings.is_empty() {
        eprintln!("the proposal passes its check with these warnings:");
        print_problems(&proposal.warnings);
    }
    Ok(ExitCode::SUCCESS)
}

fn snapshot(args: SnapshotArgs) -> Result<ExitCode, String> {
    let files =
        weir_hw::discover::snapshot(&args.root.root, &args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    eprintln!(
        "copied {files} files from {} into {}; send `tar czf machine.tgz -C {} .`, read it with --root",
        args.root.root.display(),
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

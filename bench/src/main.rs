//! `cryptera-bench`: measures PKCS#11 modules side by side in one run, alternating modules over several
//! rounds, against the raw aws-lc-rs engine. Usage:
//!
//! ```text
//! cryptera-bench [--rounds N] [--seconds S] [--only SUBSTRING] MODULE.so [MODULE.so ...]
//! ```
//!
//! The first module is "ours": ratios are first/second. Prints a Markdown table.

mod raw;
mod report;
mod rows;
mod setup;

use report::Report;
use rows::Row;
use std::path::PathBuf;
use std::time::Duration;

struct Options {
    rounds: usize,
    seconds: f64,
    only: Option<String>,
    modules: Vec<PathBuf>,
}

fn options() -> Options {
    let mut options = Options {
        rounds: 2,
        seconds: 1.0,
        only: None,
        modules: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                options.rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--seconds" => {
                options.seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds S")
            }
            "--only" => options.only = args.next(),
            "--rss-child" => {
                let path = PathBuf::from(args.next().expect("--rss-child MODULE"));
                let store = PathBuf::from(args.next().expect("--rss-child MODULE STORE-CONFIG"));
                rows::rss_child(&path, &store);
                std::process::exit(0);
            }
            _ => options.modules.push(PathBuf::from(arg)),
        }
    }
    assert!(
        !options.modules.is_empty(),
        "usage: cryptera-bench [--rounds N] [--seconds S] [--only TEXT] MODULE.so..."
    );
    options.rounds = options.rounds.max(2);
    options
}

fn main() {
    let options = options();
    let modules: Vec<setup::Module> = options.modules.iter().map(|p| setup::load(p)).collect();
    let period = Duration::from_secs_f64(options.seconds);
    let mut report = Report::new(modules.iter().map(|m| m.name.clone()).collect());
    for row in rows::all() {
        if options
            .only
            .as_ref()
            .is_some_and(|o| !row.name.contains(o.as_str()))
        {
            continue;
        }
        eprintln!("measuring {}", row.name);
        report.add(run_row(&row, &modules, options.rounds, period));
    }
    print!("{}", report.markdown());
}

fn run_row(
    row: &Row,
    modules: &[setup::Module],
    rounds: usize,
    period: Duration,
) -> report::Result {
    let mut prepared: Vec<_> = modules.iter().map(|m| (row.prepare)(m)).collect();
    let mut samples = vec![Vec::new(); modules.len()];
    let mut raw = Vec::new();
    for _ in 0..rounds {
        for (i, module) in modules.iter().enumerate() {
            samples[i].push((row.measure)(module, &mut prepared[i], period));
        }
        if let Some(engine) = &row.raw {
            raw.push(engine(period));
        }
    }
    report::Result {
        name: row.name.clone(),
        unit: row.unit,
        samples,
        raw,
        higher_is_better: row.higher_is_better,
    }
}

//! A repeatable job from its custmetrics.toml, with library calls alone: load the file, override
//! settings the way command-line flags do, then build and render the report as
//! `custmetrics report --config examples/custmetrics.toml --period quarter --as-of 2024-11-30`
//! would.
//!
//! Run: `cargo run -p custmetrics --example from_config`

use std::io::Write;

use custmetrics::config::{Config, Overrides};
use custmetrics::io::Dataset;
use custmetrics::report::Report;
use custmetrics::report::render::{self, Format, RenderOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Relative `files` in the config are resolved against its folder.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/custmetrics.toml"
    );
    let config = Config::load(path)?;

    // Overrides win over the file; what they leave unset comes from the file, then defaults.
    let mut overrides = Overrides::default();
    overrides.period = Some("quarter".into());
    overrides.as_of = chrono::NaiveDate::from_ymd_opt(2024, 11, 30);
    let (spec, options) = config.resolve(&overrides)?;

    let data = Dataset::load(&spec)?;
    let report = Report::build(&data, &options)?;

    // The file asks for Markdown.
    let format = config.format().unwrap_or(Format::Table);
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    render::render(&report, format, &RenderOptions::default(), &mut stdout)?;
    stdout.flush()?;
    Ok(())
}

//! Progress of long commands (export, import) on standard error: items, items/s and ETA,
//! drawn only on a terminal; a summary line is always printed at the end.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Instant;

pub struct Progress {
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    /// `total` in `unit`s (leaves, bytes) drives the ETA.
    pub fn new(total: u64, unit: &str, quiet: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if quiet {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        let template = if unit == "bytes" {
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ETA {eta}"
        } else {
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} leaves {msg} ETA {eta}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    /// Moves to `position` (of the total) with `items` done so far.
    pub fn update(&self, position: u64, items: u64) {
        self.bar.set_position(position);
        self.bar
            .set_message(format!("{items} items, {:.0}/s", self.rate(items)));
    }

    pub fn rate(&self, items: u64) -> f64 {
        items as f64 / self.started.elapsed().as_secs_f64().max(1e-6)
    }

    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

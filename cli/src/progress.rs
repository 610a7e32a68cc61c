//! Pull progress: a bar per layer on a terminal (bytes, rate, ETA), plain lines otherwise,
//! nothing with `--quiet`, JSON lines with `--format json`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tfctl_runtime::image::{Progress, ProgressEvent};

use crate::args::{Format, GlobalOpts};

pub enum PullProgress {
    Quiet,
    Json,
    Lines,
    Bars { multi: MultiProgress, bars: Mutex<HashMap<String, ProgressBar>> },
}

impl PullProgress {
    pub fn for_terminal(global: &GlobalOpts) -> PullProgress {
        if global.quiet {
            PullProgress::Quiet
        } else if global.format == Format::Json {
            PullProgress::Json
        } else if std::io::stderr().is_terminal() {
            PullProgress::Bars { multi: MultiProgress::new(), bars: Mutex::new(HashMap::new()) }
        } else {
            PullProgress::Lines
        }
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

impl Progress for PullProgress {
    fn event(&self, event: ProgressEvent) {
        match self {
            PullProgress::Quiet => {}
            PullProgress::Json => {
                if let Ok(mut v) = serde_json::to_value(&event) {
                    v["schema"] = 1.into();
                    v["time"] = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string().into();
                    println!("{v}");
                }
            }
            PullProgress::Lines => match &event {
                ProgressEvent::Resolved { image, manifest, layers } => {
                    eprintln!("{image}: {} ({layers} layers)", short(manifest))
                }
                ProgressEvent::LayerCached { digest, .. } => eprintln!("  {}: already present", short(digest)),
                ProgressEvent::LayerDownloaded { digest, size } => eprintln!("  {}: downloaded {size} bytes", short(digest)),
                ProgressEvent::LayerUnpacked { digest } => eprintln!("  {}: unpacked", short(digest)),
                ProgressEvent::Done { image, downloaded, .. } => eprintln!("{image}: done ({downloaded} bytes downloaded)"),
                _ => {}
            },
            PullProgress::Bars { multi, bars } => {
                let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
                match &event {
                    ProgressEvent::LayerStarted { digest, size } => {
                        let bar = multi.add(ProgressBar::new(*size));
                        bar.set_style(
                            ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar())
                                .progress_chars("=> "),
                        );
                        bar.set_prefix(short(digest).to_string());
                        bars.insert(digest.clone(), bar);
                    }
                    ProgressEvent::LayerProgress { digest, done, .. } => {
                        if let Some(b) = bars.get(digest) {
                            b.set_position(*done);
                        }
                    }
                    ProgressEvent::LayerDownloaded { digest, .. } => {
                        if let Some(b) = bars.get(digest) {
                            b.finish();
                        }
                    }
                    ProgressEvent::Done { image, downloaded, .. } => {
                        let _ = multi.println(format!("{image}: done ({downloaded} bytes downloaded)"));
                    }
                    _ => {}
                }
            }
        }
    }
}

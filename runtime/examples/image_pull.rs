//! Drives `Store::pull` from the command line until `tfctl pull` exists; used by bench/pull.sh.
//!
//! image_pull --root DIR [--insecure-registry HOST:PORT]... [--download-only] SOURCE
//! Prints one JSON line: {"seconds":..,"downloaded_bytes":..,"downloaded_blobs":..,"unpacked_layers":..}

use std::path::PathBuf;
use std::time::Instant;

use tfctl_runtime::image::{ImageSource, NoProgress, PullOptions, Store};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut root, mut opts, mut source) = (None, PullOptions { config_dir: None, ..Default::default() }, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" => root = args.next().map(PathBuf::from),
            "--insecure-registry" => opts.insecure_registries.extend(args.next()),
            "--download-only" => opts.download_only = true,
            _ => source = Some(a),
        }
    }
    let (Some(root), Some(source)) = (root, source) else {
        eprintln!("usage: image_pull --root DIR [--insecure-registry HOST:PORT]... SOURCE");
        std::process::exit(2);
    };
    let source = ImageSource::parse(&source, &std::env::current_dir().unwrap()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let start = Instant::now();
    let store = Store::open(&root).unwrap();
    match store.pull(&source, &opts, &NoProgress).await {
        Ok(p) => println!(
            "{{\"seconds\":{:.4},\"downloaded_bytes\":{},\"downloaded_blobs\":{},\"unpacked_layers\":{}}}",
            start.elapsed().as_secs_f64(),
            p.downloaded_bytes,
            p.downloaded_blobs,
            p.unpacked_layers
        ),
        Err(e) => {
            eprintln!("pull failed: {e}");
            std::process::exit(1);
        }
    }
}

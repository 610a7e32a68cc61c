//! `tfctl export kubernetes FILE`: the app file as Kubernetes manifests (tfctl_kube does the
//! mapping); this prints its warnings and writes the objects.

use std::io::Write;

use crate::args::{ExportKind, ExportKubernetesArgs, GlobalOpts, PublishAs};
use crate::exit::{CmdResult, Exit, Failure};

pub fn export(kind: ExportKind, global: &GlobalOpts) -> CmdResult {
    match kind {
        ExportKind::Kubernetes(args) => kubernetes(args, global),
    }
}

fn kubernetes(args: ExportKubernetesArgs, global: &GlobalOpts) -> CmdResult {
    let app = crate::cmd::check::load_app(&args.file)?;
    let options = tfctl_kube::Options {
        namespace: args.namespace,
        publish_as: match args.publish_as {
            PublishAs::NodePort => tfctl_kube::PublishAs::NodePort,
            PublishAs::LoadBalancer => tfctl_kube::PublishAs::LoadBalancer,
        },
    };
    let failed = |e: tfctl_kube::ExportError| Failure::msg(Exit::Failed, e.to_string());
    let export = tfctl_kube::export(&app, &options).map_err(failed)?;
    if !global.quiet {
        for w in &export.warnings {
            eprintln!("warning: {w}");
        }
    }
    if args.output.as_os_str() == "-" {
        let stream = export.to_stream().map_err(failed)?;
        std::io::stdout()
            .lock()
            .write_all(stream.as_bytes())
            .map_err(|e| Failure::msg(Exit::Failed, format!("cannot write the manifests to standard output: {e}")))?;
    } else {
        let written = export.write_dir(&args.output).map_err(failed)?;
        if !global.quiet {
            eprintln!("{}: {} objects written to {}", args.file.display(), written.len(), args.output.display());
        }
    }
    Ok(())
}

//! `tfctl events [APP[/CONTAINER]] [--since T] [--follow]`: an app's event journal
//! (tfctl_runtime::app::events), printed or followed.

use std::time::Duration;

use tfctl_runtime::app::events::{self, EventFilter, EventRecord, Follower};
use tfctl_runtime::app::record;
use tfctl_runtime::state::StateRoot;

use crate::args::{EventsArgs, Format, GlobalOpts};
use crate::context;
use crate::exit::{CmdResult, Exit, Failure};

fn print(e: &EventRecord, format: Format) {
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("schema".into(), 1.into());
            }
            println!("{v}");
        }
        Format::Text => println!("{}", e.text()),
    }
}

fn supervised(root: &StateRoot, app: &str) -> bool {
    record::load(root, app).ok().flatten().and_then(|r| r.supervisor).is_some_and(|s| s.is_alive())
}

pub fn events(args: EventsArgs, global: &GlobalOpts) -> CmdResult {
    let Some(root) = context::existing_state_root(global)? else { return Ok(()) };
    let since = args.since.as_deref().map(super::exec::parse_since).transpose()?;
    let (apps, container) = match args.target.as_deref() {
        Some(t) => match t.split_once('/') {
            Some((app, c)) => (vec![app.to_string()], Some(c.to_string())),
            None => (vec![t.to_string()], None),
        },
        None => (record::all(&root).into_iter().map(|r| r.name).collect(), None),
    };
    for app in &apps {
        if !record::app_dir(&root, app).exists() {
            return Err(Failure::msg(Exit::Failed, format!("no app {app} under this state root: see `tfctl ps`")));
        }
    }
    let filter = EventFilter { since, container };
    // Followers first: an event written while the journals are read is then not lost.
    let mut followers: Vec<(String, Follower)> = if args.follow { apps.iter().map(|a| (a.clone(), Follower::at_end(&root, a))).collect() } else { Vec::new() };
    let mut all = Vec::new();
    for app in &apps {
        all.extend(events::read(&root, app, &filter).map_err(|e| Failure::msg(Exit::Failed, format!("app {app}: cannot read its events: {e}")))?);
    }
    // Several apps' journals, merged in time (RFC 3339 UTC with nanoseconds sorts as text).
    all.sort_by(|a, b| a.time.cmp(&b.time));
    let printed: std::collections::HashSet<String> = all.iter().map(|e| serde_json::to_string(e).unwrap_or_default()).collect();
    for e in &all {
        print(e, global.format);
    }
    if !args.follow {
        return Ok(());
    }
    let mut first_round = true;
    loop {
        // Whether any supervisor lives is read before the journals: the last events of one that
        // exits in between are still printed.
        let live = apps.iter().any(|a| supervised(&root, a));
        for (app, f) in &mut followers {
            let new = f.next(&filter).map_err(|e| Failure::msg(Exit::Failed, format!("app {app}: cannot read its events: {e}")))?;
            for e in new {
                // Lines appended between the follower's start and the read came twice.
                if first_round && printed.contains(&serde_json::to_string(&e).unwrap_or_default()) {
                    continue;
                }
                print(&e, global.format);
            }
        }
        first_round = false;
        if !live {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

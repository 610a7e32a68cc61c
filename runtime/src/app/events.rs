//! An app's event journal, `apps/<app>/events.jsonl`: what happened to its containers (started,
//! healthy, unhealthy, exited with a status, oom, restarted, a hook ran with a status, the app
//! reconciled), one JSON object per line, in the order the supervisor saw it. It is written by
//! the supervisor as each event happens (not by whoever watches), so `tfctl events --since`
//! answers after the fact, also after `down`; `--follow` reads the lines appended since.
//!
//! Bounded: past [`MAX_BYTES`] the journal becomes `events.jsonl.1` (the one before that is
//! dropped) and a new one starts, so an app keeps between one and two journals' worth.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tfctl_schema::model::Event;

use super::record;
use crate::state::StateRoot;
use crate::supervise::Report;

pub const JOURNAL: &str = "events.jsonl";
/// How large a journal grows before it is rotated.
pub const MAX_BYTES: u64 = 1 << 20;

/// One line of the journal, as `tfctl events --format json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// RFC 3339, UTC, nanoseconds.
    pub time: String,
    pub app: String,
    /// `None` for an app-level event (`up`, `down`, `reconciled`).
    pub container: Option<String>,
    /// `started`, `restarted`, `healthy`, `unhealthy`, `exited`, `oom`, `failed`, `hook`,
    /// `up`, `down`, `reconciled`.
    pub event: String,
    /// Why, or the detail: `exited`'s `exited`/`stopped`/`oom`; a hook's event (`started`...);
    /// a failure's cause (`start`, `hook`, `unhealthy`, `restart-limit`...).
    pub reason: String,
    /// The exit status (`exited`, `oom`, a `hook`'s command): 128+N after signal N.
    pub status: Option<i32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The container's restart count, on `restarted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
}

impl EventRecord {
    pub fn new(app: &str, container: Option<&str>, event: &str, reason: &str) -> EventRecord {
        EventRecord {
            time: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            app: app.to_string(),
            container: container.map(str::to_string),
            event: event.to_string(),
            reason: reason.to_string(),
            status: None,
            message: String::new(),
            restarts: None,
        }
    }

    /// When it happened (`None` only for a line some other program wrote).
    pub fn at(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.time).ok()
    }

    /// One line for people: `TIME APP/CONTAINER EVENT (status N) [reason]: message`.
    pub fn text(&self) -> String {
        let who = match &self.container {
            Some(c) => format!("{}/{c}", self.app),
            None => self.app.clone(),
        };
        let status = self.status.map(|s| format!(" (status {s})")).unwrap_or_default();
        let reason = if self.reason.is_empty() || self.reason == self.event { String::new() } else { format!(" [{}]", self.reason) };
        let message = if self.message.is_empty() { String::new() } else { format!(": {}", self.message) };
        format!("{} {who} {}{status}{reason}{message}", self.time, self.event)
    }
}

/// The journal of one app, appended to by its supervisor.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    app: String,
    /// Containers started before in this supervisor's life: their next start is a restart.
    started: Mutex<HashSet<String>>,
}

/// The journal's path in the app's folder `dir`.
pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join(JOURNAL)
}

fn rotated_path(dir: &Path) -> PathBuf {
    dir.join(format!("{JOURNAL}.1"))
}

impl Journal {
    pub fn new(root: &StateRoot, app: &str) -> Journal {
        Journal { dir: record::app_dir(root, app), app: app.to_string(), started: Mutex::new(HashSet::new()) }
    }

    /// Appends `records`, rotating first when the journal is full. Losing an event is logged,
    /// never fatal: the app runs on.
    pub fn append(&self, records: &[EventRecord]) {
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.try_append(records) {
            tracing::warn!("cannot write the event journal of app {}: {e}", self.app);
        }
    }

    fn try_append(&self, records: &[EventRecord]) -> std::io::Result<()> {
        let path = journal_path(&self.dir);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() >= MAX_BYTES) {
            std::fs::rename(&path, rotated_path(&self.dir))?;
        }
        let mut text = Vec::new();
        for r in records {
            serde_json::to_writer(&mut text, r).map_err(std::io::Error::other)?;
            text.push(b'\n');
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        // One write: a reader never sees half a line of it.
        f.write_all(&text)
    }

    /// Journals one report of the supervisor. `restarts` is the container's restart count now.
    pub fn report(&self, r: &Report, restarts: u32) {
        let records = self.records_of(r, restarts);
        self.append(&records);
    }

    /// The journal lines of a report: output of hooks is the logs' (not events), a hook's
    /// warning is already in its `hook` line, and `stopping` is only the way to `exited`.
    fn records_of(&self, r: &Report, restarts: u32) -> Vec<EventRecord> {
        let container = r.container.as_deref();
        let line = |event: &str, reason: &str| {
            let mut e = EventRecord::new(&self.app, container, event, reason);
            e.message = r.message.clone();
            e.status = r.exit_code;
            e
        };
        match (r.event, r.reason.as_str()) {
            (_, "hook-output" | "hook-warning") | (Event::Stopping, _) => Vec::new(),
            (event, "hook-ran") => vec![line("hook", event.as_str())],
            (Event::Started, _) => {
                let mut out = vec![line("started", "started")];
                let again = container.is_some_and(|c| !self.started.lock().unwrap_or_else(|e| e.into_inner()).insert(c.to_string()));
                if again {
                    let mut e = line("restarted", "started");
                    e.restarts = Some(restarts);
                    out.push(e);
                }
                out
            }
            (Event::Exited, "oom") => vec![line("oom", "oom"), line("exited", "oom")],
            (event, reason) => vec![line(event.as_str(), reason)],
        }
    }

    /// `reconciled`: a new app file was applied to the running app; `message` says what changed.
    pub fn reconciled(&self, message: &str) {
        let mut e = EventRecord::new(&self.app, None, "reconciled", "reconciled");
        e.message = message.to_string();
        self.append(&[e]);
    }
}

/// Which journal lines a reader wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub since: Option<SystemTime>,
    /// Only this container's (and not the app's own).
    pub container: Option<String>,
}

impl EventFilter {
    pub fn wants(&self, e: &EventRecord) -> bool {
        self.since.is_none_or(|s| e.at().is_some_and(|t| t >= s)) && self.container.as_ref().is_none_or(|c| e.container.as_ref() == Some(c))
    }
}

fn parse_lines(text: &str, filter: &EventFilter, out: &mut Vec<EventRecord>) {
    // A line that does not parse (a journal cut by a full disk) is skipped, not fatal.
    out.extend(text.lines().filter_map(|l| serde_json::from_str::<EventRecord>(l).ok()).filter(|e| filter.wants(e)));
}

/// The journal of `app` so far, oldest first (the rotated journal, then the current one).
pub fn read(root: &StateRoot, app: &str, filter: &EventFilter) -> std::io::Result<Vec<EventRecord>> {
    let dir = record::app_dir(root, app);
    let mut out = Vec::new();
    for path in [rotated_path(&dir), journal_path(&dir)] {
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_lines(&text, filter, &mut out),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Reads what is appended to a journal from where it ends now, across rotations.
pub struct Follower {
    path: PathBuf,
    inode: Option<u64>,
    offset: u64,
}

impl Follower {
    /// Starts at the current end of `app`'s journal: what [`read`] returned is not read again.
    pub fn at_end(root: &StateRoot, app: &str) -> Follower {
        let path = journal_path(&record::app_dir(root, app));
        let meta = std::fs::metadata(&path).ok();
        Follower { inode: meta.as_ref().map(|m| m.ino()), offset: meta.map_or(0, |m| m.len()), path }
    }

    /// The whole lines appended since the last call. A rotation starts the new journal from its
    /// beginning (the lines the old one got between the two calls are lost to a follower: at
    /// most what arrives in one poll, of a megabyte).
    pub fn next(&mut self, filter: &EventFilter) -> std::io::Result<Vec<EventRecord>> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let meta = f.metadata()?;
        if self.inode != Some(meta.ino()) || meta.len() < self.offset {
            self.inode = Some(meta.ino());
            self.offset = 0;
        }
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(self.offset))?;
        let mut reader = std::io::BufReader::new(f);
        let mut out = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            // A line still being written waits for the next call.
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            self.offset += n as u64;
            parse_lines(&line, filter, &mut out);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(container: &str, event: Event, reason: &str, code: Option<i32>) -> Report {
        Report { container: Some(container.into()), event, reason: reason.into(), exit_code: code, message: String::new() }
    }

    #[test]
    fn reports_become_journal_lines_and_a_second_start_is_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(tmp.path()).unwrap();
        std::fs::create_dir_all(record::app_dir(&root, "a")).unwrap();
        let j = Journal::new(&root, "a");
        j.report(&report("web", Event::Started, "started", None), 0);
        j.report(&report("web", Event::Started, "hook-output", None), 0);
        j.report(&report("web", Event::Started, "hook-ran", Some(0)), 0);
        j.report(&report("web", Event::Exited, "oom", Some(137)), 0);
        j.report(&report("web", Event::Started, "started", None), 1);
        let mut follow = Follower::at_end(&root, "a");
        j.reconciled("web changed");
        let all = read(&root, "a", &EventFilter::default()).unwrap();
        let seen: Vec<(&str, &str, Option<i32>)> = all.iter().map(|e| (e.event.as_str(), e.reason.as_str(), e.status)).collect();
        assert_eq!(
            seen,
            [
                ("started", "started", None),
                ("hook", "started", Some(0)),
                ("oom", "oom", Some(137)),
                ("exited", "oom", Some(137)),
                ("started", "started", None),
                ("restarted", "started", None),
                ("reconciled", "reconciled", None)
            ]
        );
        assert_eq!(all[5].restarts, Some(1));
        let followed = follow.next(&EventFilter::default()).unwrap();
        assert_eq!(followed.len(), 1);
        assert_eq!(followed[0].event, "reconciled");
        assert!(follow.next(&EventFilter::default()).unwrap().is_empty());
        let only_web = EventFilter { container: Some("web".into()), ..Default::default() };
        assert_eq!(read(&root, "a", &only_web).unwrap().len(), 6);
        let later = EventFilter { since: Some(SystemTime::now() + std::time::Duration::from_secs(1)), ..Default::default() };
        assert!(read(&root, "a", &later).unwrap().is_empty());
    }

    #[test]
    fn a_full_journal_is_rotated_and_both_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(tmp.path()).unwrap();
        let dir = record::app_dir(&root, "a");
        std::fs::create_dir_all(&dir).unwrap();
        let j = Journal::new(&root, "a");
        let mut big = EventRecord::new("a", None, "up", "ready");
        big.message = "x".repeat(1000);
        let n = (MAX_BYTES / 1000) as usize + 10;
        for _ in 0..n {
            j.append(std::slice::from_ref(&big));
        }
        let mut follow = Follower::at_end(&root, "a");
        for _ in 0..n {
            j.append(std::slice::from_ref(&big));
        }
        assert!(std::fs::metadata(journal_path(&dir)).unwrap().len() <= MAX_BYTES + 1100);
        assert!(rotated_path(&dir).exists());
        let kept = read(&root, "a", &EventFilter::default()).unwrap().len();
        assert!(kept > n && kept < 3 * n, "{kept}");
        // The follower got to the rotation and went on in the new journal.
        assert!(!follow.next(&EventFilter::default()).unwrap().is_empty());
    }
}

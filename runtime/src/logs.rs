//! Container logs: one file per container, each line stamped with its time and stream, rotated
//! at a size limit with one previous file kept (and read back), as Docker's json-file driver
//! does with max-file=2.
//!
//! A line on disk reads `2026-11-30T02:11:59.123456789Z stdout the text`: the time first, so
//! `--since` can stop reading early; the stream, so `logs` can send each line where it came from.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line read back.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub time: SystemTime,
    pub stream: Stream,
    pub text: String,
}

/// Appends a container's output to its log file, rotating it at `max_size` bytes.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn previous(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

impl LogWriter {
    pub fn open(path: &Path, max_size: u64) -> io::Result<LogWriter> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter { path: path.to_path_buf(), file, size, max_size: max_size.max(1) })
    }

    /// Writes one line (without its newline) stamped now.
    pub fn line(&mut self, stream: Stream, text: &str) -> io::Result<()> {
        self.line_at(SystemTime::now(), stream, text)
    }

    pub fn line_at(&mut self, time: SystemTime, stream: Stream, text: &str) -> io::Result<()> {
        let record = format!("{} {} {}\n", humantime::format_rfc3339_nanos(time), stream.as_str(), text.trim_end_matches('\n'));
        if self.size > 0 && self.size + record.len() as u64 > self.max_size {
            self.file.flush()?;
            fs::rename(&self.path, previous(&self.path))?;
            self.file = open_append(&self.path)?;
            self.size = 0;
        }
        self.file.write_all(record.as_bytes())?;
        self.size += record.len() as u64;
        Ok(())
    }
}

/// Which lines to read back.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub since: Option<SystemTime>,
    /// Only the last N lines.
    pub tail: Option<usize>,
}

fn parse_line(line: &str) -> Option<LogLine> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let stream = match stream {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let time = humantime::parse_rfc3339(time).ok()?;
    Some(LogLine { time, stream, text: text.to_string() })
}

/// Reads a container's log, the previous (rotated) file first.
pub fn read(path: &Path, query: &LogQuery) -> io::Result<Vec<LogLine>> {
    let mut lines = Vec::new();
    for p in [previous(path), path.to_path_buf()] {
        let file = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines() {
            if let Some(l) = parse_line(&line?) {
                if query.since.is_none_or(|s| l.time >= s) {
                    lines.push(l);
                }
            }
        }
    }
    if let Some(n) = query.tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rotates_keeping_one_previous_file_and_reads_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let mut w = LogWriter::open(&path, 200).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for i in 0..20 {
            w.line_at(t0 + Duration::from_secs(i), if i % 2 == 0 { Stream::Stdout } else { Stream::Stderr }, &format!("line {i}"))
                .unwrap();
        }
        assert!(fs::metadata(&path).unwrap().len() <= 200);
        assert!(fs::metadata(previous(&path)).unwrap().len() <= 200);
        assert!(!dir.path().join("web.log.1.1").exists());
        let all = read(&path, &LogQuery::default()).unwrap();
        // Only what the two files hold survives, oldest first and in order.
        assert!(all.len() >= 4 && all.len() < 20, "{}", all.len());
        assert_eq!(all.last().unwrap().text, "line 19");
        assert!(all.windows(2).all(|w| w[0].time < w[1].time));
        assert_eq!(all.last().unwrap().stream, Stream::Stderr);

        let tail = read(&path, &LogQuery { tail: Some(2), ..Default::default() }).unwrap();
        assert_eq!(tail.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["line 18", "line 19"]);
        let since = read(&path, &LogQuery { since: Some(t0 + Duration::from_secs(18)), ..Default::default() }).unwrap();
        assert_eq!(since.len(), 2);
    }

    #[test]
    fn refuses_to_write_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("c.log")).unwrap();
        assert!(LogWriter::open(&dir.path().join("c.log"), 100).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    }
}

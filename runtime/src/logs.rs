//! Container logs: one file per container, each record stamped with its time and stream,
//! rotated at a size limit with N previous files kept (`NAME.log.1`, the newest, to
//! `NAME.log.N`) and read back, as Docker's json-file driver does with max-file=N+1.
//!
//! A record on disk reads `2026-11-30T02:11:59.123456789Z stdout the text`: the time first, so
//! `--since` can stop reading early; the stream, so `logs` can send each line where it came from.
//! The text is the container's bytes as they came (logs are bytes, not necessarily UTF-8), less
//! the newline. A line longer than [`MAX_RECORD`] is cut into records of that size, all but its
//! last written with the stream `stdout/partial` (or `stderr/partial`), as Docker does: so a
//! container writing without newlines makes the supervisor hold no more than one record per
//! stream, and a reader knows to join them again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The longest text of one record (Docker's 16 KiB).
pub const MAX_RECORD: usize = 16 * 1024;

/// How a partial record's stream is marked on disk.
const PARTIAL: &str = "/partial";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub time: SystemTime,
    pub stream: Stream,
    /// The container's bytes, without the newline.
    pub text: Vec<u8>,
    /// The line goes on in the next record of the same stream (it had no newline here).
    pub partial: bool,
}

/// Cuts a stream of bytes into records: each line without its newline, and pieces of at most
/// [`MAX_RECORD`] bytes of a longer line, so it never holds more than that. Read into
/// [`Splitter::space`], [`Splitter::commit`] what was read, then take [`Splitter::next_record`]
/// until `None`.
pub struct Splitter {
    buf: Vec<u8>,
    /// The bytes not handed out yet are `buf[start..end]`; none of `buf[start..scanned]` is a newline.
    start: usize,
    scanned: usize,
    end: usize,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter { buf: vec![0; MAX_RECORD], start: 0, scanned: 0, end: 0 }
    }
}

/// Where to cut a full buffer: before a UTF-8 sequence its end would split, so that each piece
/// of a long line of text still reads as text (bytes that are not UTF-8 are cut anywhere).
fn utf8_cut(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=3.min(len) {
        let b = bytes[len - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: its lead is further back
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return len,
        };
        return if need > back && back < len { len - back } else { len };
    }
    len
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter::default()
    }

    /// Room for the next read (never empty once the records so far are taken).
    pub fn space(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.scanned -= self.start;
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Counts `n` bytes read into [`Splitter::space`].
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next record and whether it is partial; `None` when what is left may still grow into
    /// a line.
    pub fn next_record(&mut self) -> Option<(&[u8], bool)> {
        if let Some(i) = self.buf[self.scanned..self.end].iter().position(|&b| b == b'\n') {
            let (from, to) = (self.start, self.scanned + i);
            self.start = to + 1;
            self.scanned = to + 1;
            return Some((&self.buf[from..to], false));
        }
        self.scanned = self.end;
        if self.start == 0 && self.end == self.buf.len() {
            let cut = utf8_cut(&self.buf);
            self.start = cut;
            return Some((&self.buf[..cut], true));
        }
        None
    }

    /// At the end of the stream: what is left, a line without its newline (so partial).
    pub fn finish(&mut self) -> Option<&[u8]> {
        let (from, to) = (self.start, self.end);
        self.start = to;
        self.scanned = to;
        (from < to).then(|| &self.buf[from..to])
    }
}

/// Appends a container's output to its log file, rotating it at `max_size` bytes and keeping
/// `keep` rotated files. No file grows past `max_size`: a record that would not fit in an empty
/// file is cut to fit.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    keep: u32,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// The `n`th rotated file of the log at `path` (1: the newest).
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

/// Removes a file that may not be there.
fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl LogWriter {
    /// Opens the log at `path` (`keep` of at least 1). Rotated files beyond `keep`, left by a run
    /// that kept more, are removed now: what `logs` reads is what the setting keeps.
    pub fn open(path: &Path, max_size: u64, keep: u32) -> io::Result<LogWriter> {
        let keep = keep.max(1);
        let mut n = keep + 1;
        while fs::symlink_metadata(rotated(path, n)).is_ok() {
            remove_if_there(&rotated(path, n))?;
            n += 1;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter { path: path.to_path_buf(), file, size, max_size: max_size.max(1), keep })
    }

    /// Shifts the rotated files one up (dropping the oldest) and starts an empty current file.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        remove_if_there(&rotated(&self.path, self.keep))?;
        for n in (1..self.keep).rev() {
            match fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }

    /// Writes one record (a line without its newline, or a piece of one: `partial`) stamped now.
    pub fn record(&mut self, stream: Stream, text: &[u8], partial: bool) -> io::Result<()> {
        self.record_at(SystemTime::now(), stream, text, partial)
    }

    pub fn record_at(&mut self, time: SystemTime, stream: Stream, text: &[u8], partial: bool) -> io::Result<()> {
        let head = format!("{} {}{} ", humantime::format_rfc3339_nanos(time), stream.as_str(), if partial { PARTIAL } else { "" });
        // Every record fits in an empty file: a longer text is cut to the room the limit leaves
        // (a limit below the size of a bare record, which no useful limit is, keeps nothing).
        let bare = head.len() as u64 + 1;
        if bare > self.max_size {
            return Ok(());
        }
        let room = usize::try_from(self.max_size - bare).unwrap_or(usize::MAX);
        let text = &text[..text.len().min(room)];
        let mut record = Vec::with_capacity(head.len() + text.len() + 1);
        record.extend_from_slice(head.as_bytes());
        record.extend_from_slice(text);
        record.push(b'\n');
        if self.size > 0 && self.size + record.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&record)?;
        self.size += record.len() as u64;
        Ok(())
    }
}

/// Which records to read back.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub since: Option<SystemTime>,
    /// Only the last N records.
    pub tail: Option<usize>,
}

fn parse_line(line: &[u8]) -> Option<LogLine> {
    let word = |b: &[u8]| -> Option<usize> { b.iter().position(|&c| c == b' ') };
    let t = word(line)?;
    let (time, rest) = (&line[..t], &line[t + 1..]);
    let (stream, text) = match word(rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let stream = std::str::from_utf8(stream).ok()?;
    let (stream, partial) = match stream.strip_suffix(PARTIAL) {
        Some(s) => (s, true),
        None => (stream, false),
    };
    let stream = match stream {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let time = humantime::parse_rfc3339(std::str::from_utf8(time).ok()?).ok()?;
    Some(LogLine { time, stream, text: text.to_vec(), partial })
}

/// The longest record line a reader keeps: what a writer writes, with room for its head. A
/// longer line (from a writer without the limit) is cut there.
const MAX_READ: usize = MAX_RECORD + 128;

/// Reads the next line into `line` (emptied first), keeping at most [`MAX_READ`] bytes of it.
/// False at the end of the file.
fn next_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    let mut any = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(any);
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let keep = chunk.len().min(MAX_READ.saturating_sub(line.len()));
        line.extend_from_slice(&chunk[..keep]);
        let found = done > chunk.len();
        reader.consume(done);
        if found {
            return Ok(true);
        }
    }
}

/// Reads a container's log, the oldest rotated file first, the current one last.
pub fn read(path: &Path, query: &LogQuery) -> io::Result<Vec<LogLine>> {
    let mut lines = Vec::new();
    let mut line = Vec::new();
    // The writer keeps the rotated files numbered without a gap from 1.
    let mut files: Vec<PathBuf> = (1..).map(|n| rotated(path, n)).take_while(|p| fs::symlink_metadata(p).is_ok()).collect();
    files.reverse();
    files.push(path.to_path_buf());
    for p in files {
        let file = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut reader = BufReader::new(file);
        while next_line(&mut reader, &mut line)? {
            if let Some(l) = parse_line(&line) {
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
        let mut w = LogWriter::open(&path, 200, 1).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for i in 0..20 {
            w.record_at(t0 + Duration::from_secs(i), if i % 2 == 0 { Stream::Stdout } else { Stream::Stderr }, format!("line {i}").as_bytes(), false)
                .unwrap();
        }
        assert!(fs::metadata(&path).unwrap().len() <= 200);
        assert!(fs::metadata(rotated(&path, 1)).unwrap().len() <= 200);
        assert!(!dir.path().join("web.log.1.1").exists());
        let all = read(&path, &LogQuery::default()).unwrap();
        // Only what the two files hold survives, oldest first and in order.
        assert!(all.len() >= 4 && all.len() < 20, "{}", all.len());
        assert_eq!(all.last().unwrap().text, b"line 19");
        assert!(all.windows(2).all(|w| w[0].time < w[1].time));
        assert_eq!(all.last().unwrap().stream, Stream::Stderr);

        let tail = read(&path, &LogQuery { tail: Some(2), ..Default::default() }).unwrap();
        assert_eq!(tail.iter().map(|l| l.text.as_slice()).collect::<Vec<_>>(), [b"line 18", b"line 19"]);
        let since = read(&path, &LogQuery { since: Some(t0 + Duration::from_secs(18)), ..Default::default() }).unwrap();
        assert_eq!(since.len(), 2);
    }

    #[test]
    fn keeps_as_many_rotated_files_as_asked_and_reads_them_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut w = LogWriter::open(&path, 100, 3).unwrap();
        for i in 0..40 {
            w.record_at(t0 + Duration::from_secs(i), Stream::Stdout, format!("line {i:02}").as_bytes(), false).unwrap();
        }
        // Three rotated files and the current one; none past the third.
        for n in 1..=3 {
            assert!(fs::metadata(rotated(&path, n)).unwrap().len() <= 100);
        }
        assert!(!rotated(&path, 4).exists());
        let all = read(&path, &LogQuery::default()).unwrap();
        assert!(all.windows(2).all(|w| w[0].time < w[1].time));
        assert_eq!(all.last().unwrap().text, b"line 39");
        // Four files of 100 bytes hold more than the two that one kept file would.
        let two = all.len();
        assert!(two > 4, "{two}");
        drop(w);
        // Opened again keeping one: the files beyond it go.
        let _w = LogWriter::open(&path, 100, 1).unwrap();
        assert!(rotated(&path, 1).exists() && !rotated(&path, 2).exists() && !rotated(&path, 3).exists());
        assert!(read(&path, &LogQuery::default()).unwrap().len() < two);
    }

    /// Feeds `input` in reads of `step` bytes, as the pump does, and collects the records.
    fn split(input: &[u8], step: usize) -> Vec<(Vec<u8>, bool)> {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            let mut piece = piece;
            while !piece.is_empty() {
                let space = s.space();
                assert!(!space.is_empty());
                let n = space.len().min(piece.len());
                space[..n].copy_from_slice(&piece[..n]);
                s.commit(n);
                piece = &piece[n..];
                while let Some((r, partial)) = s.next_record() {
                    out.push((r.to_vec(), partial));
                }
            }
        }
        if let Some(r) = s.finish() {
            out.push((r.to_vec(), true));
        }
        out
    }

    #[test]
    fn splits_lines_and_cuts_a_long_line_into_partial_records() {
        for step in [1, 7, 4096, 100_000] {
            assert_eq!(split(b"a\n\nbc\n", step), [(b"a".to_vec(), false), (vec![], false), (b"bc".to_vec(), false)]);
            // A line of 40 KiB and a short one: two full pieces marked partial, then the rest.
            let mut input = vec![b'x'; 40 * 1024];
            input.extend_from_slice(b"\nend");
            let got = split(&input, step);
            let sizes: Vec<(usize, bool)> = got.iter().map(|(r, p)| (r.len(), *p)).collect();
            assert_eq!(sizes, [(MAX_RECORD, true), (MAX_RECORD, true), (8 * 1024, false), (3, true)], "step {step}");
            assert_eq!(got.iter().map(|(r, _)| r.len()).sum::<usize>() + 1, input.len());
        }
    }

    #[test]
    fn a_cut_does_not_split_a_utf8_character() {
        // 'é' is two bytes: after one 'a' they straddle every 16 KiB boundary.
        let mut input = b"a".to_vec();
        input.extend("é".repeat(MAX_RECORD).as_bytes());
        let got = split(&input, 4096);
        assert!(got.len() > 2);
        for (r, _) in &got {
            assert!(std::str::from_utf8(r).is_ok());
            assert!(r.len() <= MAX_RECORD);
        }
        assert_eq!(got.concat_records(), input);
        // Bytes that are not UTF-8 are cut at the limit.
        let got = split(&vec![0xff; MAX_RECORD + 1], 4096);
        assert_eq!(got.iter().map(|(r, _)| r.len()).collect::<Vec<_>>(), [MAX_RECORD, 1]);
        assert_eq!(utf8_cut(&[0xe2, 0x82]), 2, "a buffer that is all one incomplete character is not cut to nothing");
    }

    trait Concat {
        fn concat_records(&self) -> Vec<u8>;
    }
    impl Concat for Vec<(Vec<u8>, bool)> {
        fn concat_records(&self) -> Vec<u8> {
            self.iter().flat_map(|(r, _)| r.iter().copied()).collect()
        }
    }

    #[test]
    fn keeps_bytes_that_are_not_utf8_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, 1 << 20, 1).unwrap();
        w.record(Stream::Stdout, b"\xff\xfe bad", false).unwrap();
        w.record(Stream::Stdout, b"after\r\x1b[2J", false).unwrap();
        w.record(Stream::Stderr, b"part", true).unwrap();
        let all = read(&path, &LogQuery::default()).unwrap();
        let got: Vec<(&[u8], Stream, bool)> = all.iter().map(|l| (l.text.as_slice(), l.stream, l.partial)).collect();
        assert_eq!(got, [(&b"\xff\xfe bad"[..], Stream::Stdout, false), (b"after\r\x1b[2J", Stream::Stdout, false), (b"part", Stream::Stderr, true)]);
    }

    #[test]
    fn no_file_grows_past_the_limit_even_with_a_record_larger_than_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let limit = 1000;
        let mut w = LogWriter::open(&path, limit, 1).unwrap();
        for i in 0..10 {
            w.record(Stream::Stdout, &vec![b'a' + i; MAX_RECORD], true).unwrap();
            w.record(Stream::Stdout, b"short", false).unwrap();
            for p in [&path, &rotated(&path, 1)] {
                let size = fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                assert!(size <= limit, "{} is {size} bytes", p.display());
            }
        }
        // The cut record keeps the start of its text.
        let last = read(&path, &LogQuery::default()).unwrap();
        assert!(last.iter().any(|l| l.partial && l.text.starts_with(b"jjjj")));
        // A limit below a bare record keeps nothing rather than overflow.
        let tiny = dir.path().join("tiny.log");
        let mut w = LogWriter::open(&tiny, 10, 1).unwrap();
        w.record(Stream::Stdout, b"x", false).unwrap();
        assert_eq!(fs::metadata(&tiny).unwrap().len(), 0);
    }

    #[test]
    fn a_reader_keeps_a_bounded_part_of_an_overlong_line() {
        // As a tfctl without the record limit could have written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.log");
        let mut text = b"2026-01-01T00:00:00Z stdout ".to_vec();
        text.extend(vec![b'y'; 1 << 20]);
        text.extend_from_slice(b"\n2026-01-01T00:00:01Z stderr next\n");
        fs::write(&path, &text).unwrap();
        let all = read(&path, &LogQuery::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].text.len() < MAX_READ);
        assert_eq!(all[1].text, b"next");
    }

    #[test]
    fn refuses_to_write_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("c.log")).unwrap();
        assert!(LogWriter::open(&dir.path().join("c.log"), 100, 1).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    }
}

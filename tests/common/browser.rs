//! Real-browser playback check: owns a headless Chromium per call, the tiny std-only HTTP/1.1
//! server (with byte-range support) that hands it a page and the video file, and the guards that
//! kill Chromium's whole process group and stop the server when the call ends or the test panics.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, Sender},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::Value;

/// What Chromium's `<video>` element reported for one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Playback {
    /// `duration` at `loadedmetadata`, in seconds (NaN if metadata never loaded).
    pub duration: f64,
    /// `ended` when the page reported (true once playback reached the end).
    pub ended: bool,
    /// `currentTime` when the page reported, in seconds.
    pub current_time: f64,
    /// The media error (`MediaError` code and message), a rejected `play()`, or a timeout.
    pub error: Option<String>,
    /// `videoWidth` (0 when no video frame could be decoded).
    pub video_width: u32,
    /// `videoHeight` (0 when no video frame could be decoded).
    pub video_height: u32,
}

/// How long the whole check may take before it gives up (the page itself gives up after 60 s).
const OVERALL_TIMEOUT: Duration = Duration::from_secs(90);

/// The page Chromium loads: a muted `<video>` of `/video` played at 16x, whose final state is
/// POSTed to `/report` on `ended`, `error`, or after 60 s.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>playback check</title></head><body><script>
const video = document.createElement('video');
video.muted = true;
video.preload = 'auto';
let duration = NaN;
let sent = false;
function report(problem) {
  if (sent) return;
  sent = true;
  let error = problem;
  if (video.error) error = 'MediaError ' + video.error.code + ': ' + video.error.message;
  const body = JSON.stringify({
    duration: String(duration),
    ended: video.ended,
    current_time: String(video.currentTime),
    error: error,
    video_width: video.videoWidth,
    video_height: video.videoHeight,
  });
  fetch('/report', {method: 'POST', body: body});
}
video.addEventListener('loadedmetadata', () => {
  duration = video.duration;
  video.playbackRate = 16;
  video.play().catch((e) => {
    // A media error also rejects play(); let its `error` event report it first.
    setTimeout(() => report('play() rejected: ' + e), 500);
  });
});
video.addEventListener('ended', () => report(null));
video.addEventListener('error', () => report('error event'));
setTimeout(() => report('page timeout: no ended/error within 60 s'), 60000);
video.src = '/video';
document.body.appendChild(video);
</script></body></html>
"#;

/// Plays `path` in a fresh headless Chromium, served over HTTP on 127.0.0.1, and returns what
/// its `<video>` element reported. Never panics on playback problems: they land in `error`.
/// Safe to call from parallel tests (each call has its own server, port, profile and browser).
pub fn play_in_chromium(path: &Path) -> Playback {
    assert!(path.is_file(), "{} is not a file", path.display());
    let (report_tx, report_rx) = mpsc::channel();
    let server = Server::start(path.to_owned(), content_type(path), report_tx);
    let mut chromium = Chromium::start(&format!("http://{}/", server.addr));
    let playback = wait_for_report(&report_rx, &mut chromium);
    drop(chromium);
    drop(server);
    playback
}

/// Waits for the page's report (or Chromium's early exit, or the overall timeout).
fn wait_for_report(reports: &Receiver<String>, chromium: &mut Chromium) -> Playback {
    let started = Instant::now();
    loop {
        match reports.recv_timeout(Duration::from_millis(200)) {
            Ok(body) => return parse_report(&body),
            Err(RecvTimeoutError::Disconnected) => return failed("the HTTP server stopped", chromium),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if chromium.exited() {
            return failed("Chromium exited before the page reported", chromium);
        }
        if started.elapsed() > OVERALL_TIMEOUT {
            return failed(&format!("no report from the page within {OVERALL_TIMEOUT:?}"), chromium);
        }
    }
}

/// A Playback for a check that got no report, with the tail of Chromium's log.
fn failed(why: &str, chromium: &Chromium) -> Playback {
    let log = std::fs::read_to_string(chromium.dir.join("chromium.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
    Playback {
        duration: f64::NAN,
        ended: false,
        current_time: f64::NAN,
        error: Some(format!("{why}; Chromium log tail:\n{}", tail.join("\n"))),
        video_width: 0,
        video_height: 0,
    }
}

/// Reads the page's JSON report (numbers come as strings so that NaN and Infinity survive).
fn parse_report(body: &str) -> Playback {
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        return Playback {
            duration: f64::NAN,
            ended: false,
            current_time: f64::NAN,
            error: Some(format!("unreadable report: {body}")),
            video_width: 0,
            video_height: 0,
        };
    };
    let number = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).or(v.as_f64()).unwrap_or(f64::NAN);
    Playback {
        duration: number(&json["duration"]),
        ended: json["ended"].as_bool().unwrap_or(false),
        current_time: number(&json["current_time"]),
        error: json["error"].as_str().map(str::to_owned),
        video_width: json["video_width"].as_u64().unwrap_or(0) as u32,
        video_height: json["video_height"].as_u64().unwrap_or(0) as u32,
    }
}

/// The `Content-Type` for a video file, by extension. Chromium plays Matroska served as
/// `video/x-matroska` (it sniffs the container; the type only has to be a media type).
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("mp4" | "m4v" | "mov") => "video/mp4",
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        _ => "application/octet-stream",
    }
}

unsafe extern "C" {
    /// POSIX `kill(2)`; a negative pid signals that process group.
    safe fn kill(pid: i32, sig: i32) -> i32;
}

/// `SIGKILL` on Linux.
const SIGKILL: i32 = 9;

/// A headless Chromium in its own process group with a fresh profile; dropping it kills the
/// whole group (browser, renderer, GPU and utility processes) and deletes the profile.
struct Chromium {
    child: Child,
    /// Holds `profile/` and `chromium.log` (Chromium's stdout and stderr).
    dir: PathBuf,
}

impl Chromium {
    /// Starts Chromium on `url`.
    fn start(url: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dvr-chromium-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("profile")).unwrap();
        let log = File::create(dir.join("chromium.log")).unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromium (scripts/setup.sh installs it): {e}"));
        Self { child, dir }
    }

    /// Whether the launched process has already exited (a crash, or a bad flag).
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The group id is the child's pid (`process_group(0)`); kill every member, then reap.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            kill(-pid, SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Children exit asynchronously after SIGKILL and may still be writing the profile.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The HTTP/1.1 server of one check, on an ephemeral port of 127.0.0.1: `GET /` is the page,
/// `GET`/`HEAD /video` the file (with byte ranges), `POST /report` the page's result. Dropping
/// it stops accepting connections.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What each connection serves.
struct Site {
    video: PathBuf,
    content_type: &'static str,
    reports: Sender<String>,
}

impl Server {
    /// Binds and starts accepting; each connection gets a thread.
    fn start(video: PathBuf, content_type: &'static str, reports: Sender<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let site = Arc::new(Site { video, content_type, reports });
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let site = Arc::clone(&site);
                    // Connection threads end when Chromium closes (or dies with) the connection.
                    std::thread::spawn(move || {
                        let _ = serve_connection(stream, &site);
                    });
                }
            })
        };
        Self { addr, stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking `accept`.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One parsed request: method, path, the `Range` header, the body.
struct Request {
    method: String,
    path: String,
    range: Option<String>,
    body: Vec<u8>,
}

/// Serves requests on one keep-alive connection until the client closes it.
fn serve_connection(stream: TcpStream, site: &Site) -> io::Result<()> {
    stream.set_read_timeout(Some(OVERALL_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader)? {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET" | "HEAD", "/") => {
                respond(&mut writer, "200 OK", "text/html; charset=utf-8", &[], PAGE.as_bytes(), &request)?;
            }
            ("GET" | "HEAD", "/video") => serve_video(&mut writer, site, &request)?,
            ("POST", "/report") => {
                let _ = site.reports.send(String::from_utf8_lossy(&request.body).into_owned());
                respond(&mut writer, "204 No Content", "text/plain", &[], b"", &request)?;
            }
            _ => respond(&mut writer, "404 Not Found", "text/plain", &[], b"not found", &request)?,
        }
        writer.flush()?;
    }
    Ok(())
}

/// Reads one request; `None` at a clean end of the connection.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad request line {line:?}")));
    };
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let method = method.to_owned();
    let mut range = None;
    let mut content_length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("range") {
            range = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request { method, path, range, body }))
}

/// Writes a response with an in-memory body (none for `HEAD`).
fn respond(
    writer: &mut impl Write,
    status: &str,
    content_type: &str,
    extra_headers: &[String],
    body: &[u8],
    request: &Request,
) -> io::Result<()> {
    write_head(writer, status, content_type, body.len() as u64, extra_headers)?;
    if request.method != "HEAD" {
        writer.write_all(body)?;
    }
    Ok(())
}

/// Writes a status line and headers.
fn write_head(
    writer: &mut impl Write,
    status: &str,
    content_type: &str,
    content_length: u64,
    extra_headers: &[String],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n\
         Cache-Control: no-store\r\n"
    );
    for header in extra_headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())
}

/// Serves the video: 200 with the whole file, 206 with the requested range, or 416.
fn serve_video(writer: &mut impl Write, site: &Site, request: &Request) -> io::Result<()> {
    let mut file = File::open(&site.video)?;
    let len = file.metadata()?.len();
    let accept = "Accept-Ranges: bytes".to_owned();
    let (status, start, count, headers) = match byte_range(request.range.as_deref(), len) {
        Range::Whole => ("200 OK", 0, len, vec![accept]),
        Range::Part(first, last) => (
            "206 Partial Content",
            first,
            last - first + 1,
            vec![accept, format!("Content-Range: bytes {first}-{last}/{len}")],
        ),
        Range::Unsatisfiable => {
            let headers = [accept, format!("Content-Range: bytes */{len}")];
            return respond(writer, "416 Range Not Satisfiable", "text/plain", &headers, b"", request);
        }
    };
    write_head(writer, status, site.content_type, count, &headers)?;
    if request.method != "HEAD" {
        file.seek(SeekFrom::Start(start))?;
        let copied = io::copy(&mut file.take(count), writer)?;
        if copied != count {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the video shrank while being served"));
        }
    }
    Ok(())
}

/// What part of the file a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// No header, or one this server ignores (several ranges, bad syntax): send all of it.
    Whole,
    /// The inclusive byte range `first..=last`.
    Part(u64, u64),
    /// Starts at or beyond the end of the file (416).
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` (the last n bytes) for a file of `len` bytes.
fn byte_range(header: Option<&str>, len: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Range::Whole };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else { return Range::Whole };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return match last.parse::<u64>() {
            Ok(0) => Range::Unsatisfiable,
            Ok(_) if len == 0 => Range::Unsatisfiable,
            Ok(n) => Range::Part(len.saturating_sub(n), len - 1),
            Err(_) => Range::Whole,
        };
    }
    let Ok(first) = first.parse::<u64>() else { return Range::Whole };
    let last = if last.is_empty() {
        len.saturating_sub(1)
    } else {
        match last.parse::<u64>() {
            Ok(last) if last >= first => last.min(len.saturating_sub(1)),
            _ => return Range::Whole,
        }
    };
    if first >= len { Range::Unsatisfiable } else { Range::Part(first, last) }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{BufRead, BufReader, Read, Write},
        net::TcpStream,
        sync::mpsc,
        time::Duration,
    };

    use super::{Range, Server, byte_range};

    #[test]
    fn byte_ranges() {
        assert_eq!(byte_range(None, 100), Range::Whole);
        assert_eq!(byte_range(Some("bytes=0-"), 100), Range::Part(0, 99));
        assert_eq!(byte_range(Some("bytes=10-19"), 100), Range::Part(10, 19));
        assert_eq!(byte_range(Some("bytes=90-500"), 100), Range::Part(90, 99));
        assert_eq!(byte_range(Some("bytes=-30"), 100), Range::Part(70, 99));
        assert_eq!(byte_range(Some("bytes=-300"), 100), Range::Part(0, 99));
        assert_eq!(byte_range(Some("bytes=100-"), 100), Range::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 100), Range::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=0-"), 0), Range::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=5-3"), 100), Range::Whole);
        assert_eq!(byte_range(Some("bytes=0-1,5-6"), 100), Range::Whole);
        assert_eq!(byte_range(Some("items=0-1"), 100), Range::Whole);
    }

    /// Sends one request on `stream` and reads the response: status line, headers, body.
    fn exchange(stream: &mut BufReader<TcpStream>, request: &str) -> (String, Vec<String>, Vec<u8>) {
        stream.get_mut().write_all(request.as_bytes()).unwrap();
        let mut status = String::new();
        stream.read_line(&mut status).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).unwrap();
            if line.trim_end().is_empty() {
                break;
            }
            headers.push(line.trim_end().to_owned());
        }
        let length = headers.iter().find_map(|h| h.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
        let mut body = vec![0; if request.starts_with("HEAD") { 0 } else { length }];
        stream.read_exact(&mut body).unwrap();
        (status.trim_end().to_owned(), headers, body)
    }

    #[test]
    fn server_answers_ranges_on_one_connection() {
        let dir = std::env::temp_dir().join(format!("dvr-browser-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let video = dir.join("v.mp4");
        let bytes: Vec<u8> = (0..100u8).collect();
        std::fs::write(&video, &bytes).unwrap();
        let (tx, rx) = mpsc::channel();
        let server = Server::start(video, "video/mp4", tx);
        let mut stream = BufReader::new(TcpStream::connect(server.addr).unwrap());
        let get = |range: &str| format!("GET /video HTTP/1.1\r\nHost: x\r\nRange: {range}\r\n\r\n");

        let (status, headers, body) = exchange(&mut stream, "GET /video HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(headers.contains(&"Accept-Ranges: bytes".to_owned()), "{headers:?}");
        assert!(headers.contains(&"Content-Type: video/mp4".to_owned()), "{headers:?}");
        assert_eq!(body, bytes);

        for (range, first, last) in [("bytes=10-19", 10, 19), ("bytes=95-", 95, 99), ("bytes=-5", 95, 99)] {
            let (status, headers, body) = exchange(&mut stream, &get(range));
            assert_eq!(status, "HTTP/1.1 206 Partial Content", "{range}");
            assert!(headers.contains(&format!("Content-Range: bytes {first}-{last}/100")), "{range}: {headers:?}");
            assert!(headers.contains(&"Accept-Ranges: bytes".to_owned()), "{range}: {headers:?}");
            assert_eq!(body, bytes[first..=last], "{range}");
        }

        let (status, headers, _) = exchange(&mut stream, &get("bytes=100-"));
        assert_eq!(status, "HTTP/1.1 416 Range Not Satisfiable");
        assert!(headers.contains(&"Content-Range: bytes */100".to_owned()), "{headers:?}");

        let (status, headers, body) = exchange(&mut stream, "HEAD /video HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(headers.contains(&"Content-Length: 100".to_owned()), "{headers:?}");
        assert!(body.is_empty(), "HEAD sends no body: the next answer on this connection parses");

        let (status, headers, body) = exchange(&mut stream, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(headers.iter().any(|h| h.starts_with("Content-Type: text/html")), "{headers:?}");
        assert!(String::from_utf8(body).unwrap().contains("/report"));

        let report = "POST /report HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        assert_eq!(exchange(&mut stream, report).0, "HTTP/1.1 204 No Content");
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "{\"a\":1}");

        drop(stream);
        drop(server);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

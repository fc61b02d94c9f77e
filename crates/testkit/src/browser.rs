//! A real browser for end-to-end tests: Debian's headless `chromium`, driven through
//! `chromedriver` over the W3C WebDriver protocol (plain JSON over HTTP, so a few calls of a
//! blocking HTTP client are the whole client). Without the two binaries a test says so loudly
//! and skips — unless `CI=true`, where that is a failure (`.ci/run` installs them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where Debian puts the two binaries; `CHROMIUM` and `CHROMEDRIVER` override.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One headless browser window, closed (and its driver stopped) when dropped.
pub struct Browser {
    driver: Child,
    session: String,
    base: String,
    http: reqwest::blocking::Client,
}

fn binary(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.exists().then_some(path)
}

impl Browser {
    /// A new headless window with performance (network) and console logging on, or `None`
    /// (after a loud message) where chromium is not installed and this is not CI.
    ///
    /// # Panics
    /// Under `CI=true` without the binaries, or if the driver does not start.
    pub fn start() -> Option<Browser> {
        let (Some(chromium), Some(driver)) = (
            binary("CHROMIUM", CHROMIUM),
            binary("CHROMEDRIVER", CHROMEDRIVER),
        ) else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true but chromium and chromedriver are not installed (apt-get install chromium chromium-driver)");
            }
            eprintln!("!!! chromium or chromedriver not installed: skipping a browser test !!!");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--no-first-run", "--disable-extensions"]
            },
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"}
        }}});
        let mut browser = Browser {
            driver: child,
            session: String::new(),
            base,
            http,
        };
        let answer = browser.call("POST", "/session", &caps);
        browser.session = answer["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Some(browser)
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(body),
        };
        let answer: Value = request
            .send()
            .expect("webdriver request")
            .json()
            .expect("webdriver answer");
        if let Some(error) = answer["value"].get("error") {
            panic!(
                "webdriver {method} {path}: {error}: {}",
                answer["value"]["message"]
            );
        }
        answer["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url` and waits for its load event.
    pub fn goto(&self, url: &str) {
        self.call("POST", &self.session_path("/url"), &json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; what it returns.
    pub fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            &json!({"script": script, "args": args}),
        )
    }

    /// Runs `script` until it returns something truthy, for at most `within`; that value.
    ///
    /// # Panics
    /// If it never does.
    pub fn wait_for(&self, script: &str, within: Duration) -> Value {
        let started = Instant::now();
        loop {
            let v = self.execute(script, &[]);
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(
                started.elapsed() < within,
                "waited {within:?} for `{script}`"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The requests the page made since the last call: (method, URL) of each
    /// `Network.requestWillBeSent` in Chrome's performance log.
    pub fn requests(&self) -> Vec<(String, String)> {
        let entries = self.call(
            "POST",
            &self.session_path("/se/log"),
            &json!({"type": "performance"}),
        );
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
            .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
            .map(|m| {
                let r = &m["message"]["params"]["request"];
                (
                    r["method"].as_str().unwrap_or_default().to_owned(),
                    r["url"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The page's console messages since the last call (level and text).
    pub fn console(&self) -> Vec<(String, String)> {
        let entries = self.call(
            "POST",
            &self.session_path("/se/log"),
            &json!({"type": "browser"}),
        );
        entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or_default().to_owned(),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Presses keys as a person would, one after another: each item of `keys` is a WebDriver
    /// key (`"\u{E004}"` Tab, `"\u{E00C}"` Escape, `"\u{E008}"` Shift); `shift` holds Shift
    /// down throughout.
    pub fn press(&self, keys: &[&str], shift: bool) {
        let mut actions = Vec::new();
        if shift {
            actions.push(json!({"type": "keyDown", "value": "\u{E008}"}));
        }
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        if shift {
            actions.push(json!({"type": "keyUp", "value": "\u{E008}"}));
        }
        self.call(
            "POST",
            &self.session_path("/actions"),
            &json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    /// Resizes the window (a phone is 390 × 844).
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.session_path("/window/rect"),
            &json!({"width": width, "height": height}),
        );
    }

    /// The cookies the current page's site holds, as WebDriver lists them (HttpOnly ones too).
    pub fn cookies(&self) -> Vec<Value> {
        self.call("GET", &self.session_path("/cookie"), &Value::Null)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Runs axe-core (`axe_source`, the release file) in the page: its serious and critical
    /// violations of WCAG 2.1 A and AA, each as `rule: target, …`.
    pub fn accessibility_violations(&self, axe_source: &str) -> Vec<String> {
        self.execute(axe_source, &[]);
        let found = self.call(
            "POST",
            &self.session_path("/execute/async"),
            &json!({"script": "const done = arguments[arguments.length - 1];
                axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                  .then(r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                  .catch(e => done(['axe failed: ' + e]));", "args": []}),
        );
        found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// Saves a PNG of the window at `path`.
    ///
    /// # Panics
    /// If the screenshot cannot be taken or written.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let png = self.call("GET", &self.session_path("/screenshot"), &Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("png");
        std::fs::write(path, bytes).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Serves `html` at `/` on a loopback port until the process ends, as a site of its own
/// (another origin than the server under test); its base URL.
pub fn serve_page(html: String) -> String {
    serve_site(vec![("/".into(), "text/html; charset=utf-8", html)])
}

/// Serves each `(path, content type, body)` on a loopback port until the process ends (404
/// elsewhere); its base URL.
pub fn serve_site(files: Vec<(String, &'static str, String)>) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let found = files
                .iter()
                .find(|(path, ..)| head.starts_with(format!("GET {path} ").as_bytes()));
            let (status, kind, body) = match found {
                Some((_, kind, body)) => ("200 OK", *kind, body.as_str()),
                None => ("404 Not Found", "text/plain", ""),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}")
}

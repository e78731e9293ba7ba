//! Headless Chromium over the DevTools protocol (chromiumoxide) for tests/web_browser.rs:
//! launching it (or saying clearly why not), one at a time, waiting on the page's DOM,
//! typing, clicking and saving screenshots under `target/browser-screenshots/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, RequestPattern, RequestStage,
};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, EventJavascriptDialogOpening, HandleJavaScriptDialogParams,
};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, MutexGuard};
use tokio::task::JoinHandle;

/// The environment variable that skips the browser tests on a machine without Chromium.
pub const SKIP_VAR: &str = "FIREBREAK_SKIP_BROWSER";

/// The desktop window every page is shown in.
pub const DESKTOP: (u32, u32) = (1280, 900);

/// A phone's viewport (CSS pixels), for one screenshot of the incident page.
pub const PHONE: (i64, i64) = (390, 844);

/// Whether the browser tests are to be skipped here (`FIREBREAK_SKIP_BROWSER=1`); says so
/// on stderr when they are.
pub fn skipped(test: &str) -> bool {
    let skip = std::env::var(SKIP_VAR).is_ok_and(|v| v == "1");
    if skip {
        eprintln!("{test}: skipped, because {SKIP_VAR}=1 (no browser was launched)");
    }
    skip
}

/// Chromium's executable: `$FIREBREAK_CHROMIUM`, else `chromium` (Debian's package) or
/// `chromium-browser` on the `PATH`.
fn chromium_executable() -> PathBuf {
    if let Some(path) = std::env::var_os("FIREBREAK_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "Chromium is not installed, so the browser test cannot run: install Debian's \
                 chromium package (scripts/test does when it is missing), or set \
                 {SKIP_VAR}=1 to skip the browser test on this machine."
            )
        })
}

/// Where a run's screenshots go: `target/browser-screenshots/<run>/` (under
/// `$CARGO_TARGET_DIR` when that is set).
pub fn screenshot_dir(run: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("browser-screenshots").join(run);
    std::fs::create_dir_all(&dir).expect("the screenshot directory can be made");
    dir
}

/// One browser at a time on this machine's few cores, so the live latency measured is the
/// server's and not a crowd of Chromiums'.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const RECORD_EVENT_SOURCES: &str = "(() => {
  const Original = window.EventSource;
  if (!Original) return;
  window.__eventSources = [];
  window.EventSource = function (url, options) {
    const source = new Original(url, options);
    window.__eventSources.push(source);
    return source;
  };
  window.EventSource.prototype = Original.prototype;
  Object.assign(window.EventSource, { CONNECTING: 0, OPEN: 1, CLOSED: 2 });
})();";

/// A headless Chromium with a profile of its own, closed by [`Chromium::close`] (killed on
/// drop when a test fails first).
pub struct Chromium {
    pub browser: Browser,
    handler: JoinHandle<()>,
    shots: PathBuf,
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Chromium {
    /// Launches Chromium once no other test's is running; its tabs' screenshots go to
    /// `target/browser-screenshots/<run>/`.
    pub async fn launch(run: &str) -> Self {
        let turn = ONE_AT_A_TIME.lock().await;
        let executable = chromium_executable();
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(&executable)
            .no_sandbox()
            .window_size(DESKTOP.0, DESKTOP.1)
            .viewport(None)
            .user_data_dir(profile.path())
            .args(["--disable-gpu", "--disable-dev-shm-usage"])
            .build()
            .unwrap_or_else(|e| panic!("Chromium could not be configured: {e}"));
        let (browser, mut events) = Browser::launch(config).await.unwrap_or_else(|e| {
            panic!(
                "Chromium ({}) did not start, so the browser test cannot run: {e}. Set \
                 {SKIP_VAR}=1 to skip the browser test on this machine.",
                executable.display()
            )
        });
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        Self {
            browser,
            handler,
            shots: screenshot_dir(run),
            _profile: profile,
            _turn: turn,
        }
    }

    /// A new tab at `url`, whose JavaScript dialogs (`alert`, …) are counted and dismissed.
    pub async fn open(&self, url: &str) -> Tab {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .expect("a new tab");
        let dialogs = Arc::new(AtomicUsize::new(0));
        let mut opening = page
            .event_listener::<EventJavascriptDialogOpening>()
            .await
            .unwrap();
        let (counted, dismisser) = (dialogs.clone(), page.clone());
        tokio::spawn(async move {
            while opening.next().await.is_some() {
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = dismisser
                    .execute(HandleJavaScriptDialogParams::new(false))
                    .await;
            }
        });
        let tab = Tab {
            page,
            dialogs,
            shots: self.shots.clone(),
        };
        tab.goto(url).await;
        tab
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

/// One tab, with the count of JavaScript dialogs its pages opened.
pub struct Tab {
    pub page: Page,
    dialogs: Arc<AtomicUsize>,
    shots: PathBuf,
}

impl Tab {
    pub fn dialogs_opened(&self) -> usize {
        self.dialogs.load(Ordering::SeqCst)
    }

    /// The value of a JavaScript expression, evaluated in the page.
    pub async fn js<T: DeserializeOwned>(&self, expression: &str) -> T {
        self.try_js(expression)
            .await
            .unwrap_or_else(|e| panic!("evaluating `{expression}` failed: {e}"))
    }

    async fn try_js<T: DeserializeOwned>(&self, expression: &str) -> Result<T, String> {
        let function = format!("() => ({expression})");
        let result = self
            .page
            .evaluate_function(function.as_str())
            .await
            .map_err(|e| e.to_string())?;
        result.into_value().map_err(|e| e.to_string())
    }

    /// Polls `condition` (a JavaScript expression) every 10 ms until it is true, and returns
    /// how long that took; `None` after `limit`. A page mid-navigation counts as false.
    pub async fn wait_for(&self, condition: &str, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.try_js::<bool>(condition).await == Ok(true) {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Waits (up to 10 s) until the page at `path` has loaded, or panics saying where the
    /// tab is instead.
    pub async fn wait_for_path(&self, path_pattern: &str) {
        let condition = format!(
            "new RegExp({}).test(location.pathname) && document.readyState === 'complete'",
            serde_json::to_string(&format!("^{path_pattern}$")).unwrap()
        );
        if self
            .wait_for(&condition, Duration::from_secs(10))
            .await
            .is_none()
        {
            let at: String = self.js("location.href").await;
            let text: String = self
                .js("document.body ? document.body.innerText : ''")
                .await;
            panic!("the tab did not reach {path_pattern}; it is at {at}: {text}");
        }
    }

    /// From the next page on, every `EventSource` the page opens is kept in
    /// `window.__eventSources`, so a test can wait until the live stream is connected.
    pub async fn record_event_sources(&self) {
        self.page
            .evaluate_on_new_document(RECORD_EVENT_SOURCES)
            .await
            .unwrap();
    }

    pub async fn goto(&self, url: &str) {
        self.page
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// Clicks into the field `selector` and types `text` into it, key by key.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let field = self
            .page
            .find_element(selector)
            .await
            .unwrap_or_else(|e| panic!("no {selector} on the page: {e}"));
        field.click().await.unwrap();
        field.type_str(text).await.unwrap();
    }

    pub async fn click(&self, selector: &str) {
        let element = self
            .page
            .find_element(selector)
            .await
            .unwrap_or_else(|e| panic!("no {selector} on the page: {e}"));
        element.click().await.unwrap();
    }

    /// Submits a form twice, as a double click on a slow day does: clicks `selector`, holds
    /// the server's answer to that `POST` (to a URL ending in `path`) in the browser, clicks
    /// again while the first page has not come back, and lets the answers through. Returns
    /// how many such posts the server answered.
    pub async fn click_twice_before_the_answer(&self, selector: &str, path: &str) -> usize {
        let hold = RequestPattern::builder()
            .url_pattern(format!("*{path}"))
            .request_stage(RequestStage::Response)
            .build();
        let mut paused = self
            .page
            .event_listener::<EventRequestPaused>()
            .await
            .unwrap();
        self.page
            .execute(fetch::EnableParams::builder().pattern(hold).build())
            .await
            .unwrap();
        let button = self
            .page
            .find_element(selector)
            .await
            .unwrap_or_else(|e| panic!("no {selector} on the page: {e}"));
        let point = button
            .scroll_into_view()
            .await
            .unwrap()
            .clickable_point()
            .await
            .unwrap();
        let mut answered = Vec::new();
        for _ in 0..2 {
            self.page.click(point).await.expect("a click");
            let event = tokio::time::timeout(Duration::from_secs(10), paused.next()).await;
            let event = event
                .ok()
                .flatten()
                .expect("the post is answered by the server");
            assert_eq!(event.request.method, "POST", "{}", event.request.url);
            answered.push(event.request_id.clone());
        }
        for id in answered.iter().rev() {
            // The first post's navigation was replaced by the second's: continuing it may
            // fail, as it no longer exists.
            let _ = self
                .page
                .execute(ContinueRequestParams::new(id.clone()))
                .await;
        }
        self.page
            .execute(fetch::DisableParams::default())
            .await
            .unwrap();
        answered.len()
    }

    /// The text of the first element matching `selector`, or `None` when there is none.
    pub async fn text_of(&self, selector: &str) -> Option<String> {
        let selector = serde_json::to_string(selector).unwrap();
        self.js(&format!(
            "(document.querySelector({selector}) || {{ textContent: null }}).textContent"
        ))
        .await
    }

    pub async fn count(&self, selector: &str) -> usize {
        let selector = serde_json::to_string(selector).unwrap();
        self.js(&format!("document.querySelectorAll({selector}).length"))
            .await
    }

    /// The HTTP status a `GET` of `path` answers this tab's session with.
    pub async fn status_of(&self, path: &str) -> u16 {
        let path = serde_json::to_string(path).unwrap();
        self.js(&format!(
            "fetch({path}, {{ redirect: 'manual' }}).then(r => r.status)"
        ))
        .await
    }

    /// Saves the whole page as `<name>.png` in the run's screenshot directory.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("{name}.png"));
        let params = ScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .full_page(true)
            .build();
        self.page
            .save_screenshot(params, &path)
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        path
    }

    /// Shows the page as a phone would (390×844 CSS pixels, twice the density), saves what
    /// the phone's screen shows, and returns the page's width there (CSS pixels).
    pub async fn phone_screenshot(&self, name: &str) -> (PathBuf, i64) {
        let phone = SetDeviceMetricsOverrideParams::builder()
            .width(PHONE.0)
            .height(PHONE.1)
            .device_scale_factor(2.0)
            .mobile(true)
            .build()
            .unwrap();
        self.page.execute(phone).await.unwrap();
        self.page.reload().await.unwrap();
        let width: i64 = self.js("document.documentElement.scrollWidth").await;
        let path = self.shots.join(format!("{name}.png"));
        let params = ScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .build();
        self.page.save_screenshot(params, &path).await.unwrap();
        (path, width)
    }
}

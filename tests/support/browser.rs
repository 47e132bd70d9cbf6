//! Headless Chromium for the web app's tests: Debian's chromium driven by
//! chromedriver (W3C WebDriver, through fantoccini), a fresh profile each
//! time, no network beyond loopback. Screenshots go to
//! `target/screenshots/` (ignored by git) for people to look at.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// The screen a test looks through.
#[derive(Debug, Clone, Copy)]
pub enum Device {
    /// A phone 360 CSS pixels wide (Chrome's mobile emulation: touch,
    /// device pixel ratio 2), held upright.
    Phone,
    /// A laptop window, 1280 × 900.
    Desktop,
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Where the tests write screenshots.
pub fn screenshots_dir() -> PathBuf {
    let dir = crate::repo_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// Start chromedriver and a headless Chromium showing pages as `device`.
    pub async fn start(device: Device) -> Browser {
        for binary in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: `make test` installs Debian's chromium and chromium-driver"
            );
        }
        let port = crate::free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        closeloop_testkit::wait_for_port(port, Duration::from_secs(20));
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = serde_json::json!({"binary": "/usr/bin/chromium", "args": args});
        match device {
            Device::Phone => {
                options["mobileEmulation"] = serde_json::json!({
                    "deviceMetrics": {"width": 360, "height": 780, "pixelRatio": 2.0, "touch": true},
                    "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36"
                });
                options["args"]
                    .as_array_mut()
                    .unwrap()
                    .push("--window-size=360,780".into());
            }
            Device::Desktop => options["args"]
                .as_array_mut()
                .unwrap()
                .push("--window-size=1280,900".into()),
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Click `css`, brought to the middle of the screen first (as a person
    /// scrolls to it: sticky bars cover the screen's edges).
    pub async fn click(&self, css: &str) {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center'});",
                vec![serde_json::to_value(&element).unwrap()],
            )
            .await
            .unwrap();
        element.click().await.unwrap();
    }

    /// Click `css`, which leads to another page, and wait until that page
    /// is loaded (WebDriver's click does not wait for a form's answer).
    pub async fn click_to_page(&self, css: &str) {
        self.client
            .execute("window.__closeloopOld = true;", vec![])
            .await
            .unwrap();
        self.click(css).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__closeloopOld !== true && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .map(|v| v.as_bool() == Some(true))
                .unwrap_or(false);
            if loaded {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no new page after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .send_keys(text)
            .await
            .unwrap();
    }

    /// Pick the option of `value` in the select `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// Save a PNG of the whole page (beyond the screen, as a person
    /// scrolling sees it) as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let shot = self
            .client
            .issue_cmd(DevTools {
                cmd: "Page.captureScreenshot",
                params: serde_json::json!({"format": "png", "captureBeyondViewport": true}),
            })
            .await
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("a screenshot"))
            .unwrap();
        std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
    }

    /// Run axe-core (installed by `make test` in `tests/browser/`) on the
    /// page: the violations of impact "serious" or "critical", as
    /// "rule: targets" lines.
    pub async fn serious_a11y_violations(&self) -> Vec<String> {
        let axe = crate::repo_root().join("tests/browser/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&axe).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (make test installs axe-core with npm in tests/browser)",
                axe.display()
            )
        });
        self.client.execute(&source, vec![]).await.unwrap();
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                    .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,
                        targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))
                    .catch(e => done([{id: 'axe-error', impact: 'critical', targets: [String(e)]}]));",
                vec![],
            )
            .await
            .unwrap();
        result
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| format!("{}: {}", v["id"], v["targets"]))
            .collect()
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// A Chrome DevTools command through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct DevTools {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

//! End to end through the real window: a real `chatapp-server`, the app driven by
//! tauri-driver and WebKitWebDriver under Xvfb, and a second person on `chatapp-client`.
//! The app is pointed at the server on its first screen, signs in, opens the
//! conversation, sends a message the other person receives, and shows their answer; a
//! voice message is recorded through the system's audio (PulseAudio, speech from
//! espeak-ng), previewed and sent, and received with the speech; a third person's message,
//! while another window has the focus, shows a notification (dunst on the test's own
//! session bus) whose click opens that conversation.

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chatapp_client::protocol::{Message, MessageKind, RegisterRequest, ServerEvent};
use chatapp_client::{Api, Event, Realtime, RealtimeOptions};
use serde_json::{Value, json};
use support::{Daemon, private_dir, require, start_server, xvfb};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The whole X display as a PNG in `desktop/test-artifacts/` (gitignored), to look at.
fn screenshot(display: &str, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(name);
    let ok = Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        eprintln!("screenshot: {}", path.display());
    }
}

const SPEECH: &str = "a voice message from the desktop app";

/// Of a 16-bit WAV: its length, the span louder than the noise floor, and that span's
/// RMS (samples mixed to mono), in seconds and full scale.
fn speech_in(wav: &[u8]) -> (f32, f32, f32) {
    let (mono, rate) = support::read_wav_bytes(wav);
    let (first, last) = support::loud_span(&mono, 0.02).expect("sound");
    let rate = rate as f32;
    (
        mono.len() as f32 / rate,
        (last - first) as f32 / rate,
        support::rms(&mono[first..=last]),
    )
}

/// A minimal W3C WebDriver session.
struct Driver {
    http: reqwest::Client,
    base: String,
}

impl Driver {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("webdriver request");
        let v: Value = resp.json().await.expect("webdriver json");
        if let Some(err) = v["value"].get("error") {
            panic!("webdriver {path}: {err} {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let resp = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .expect("find");
            let v: Value = resp.json().await.expect("json");
            if let Some(id) = v["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Moves the mouse pointer onto the element's centre.
    async fn hover(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{
                "type": "pointer",
                "id": "mouse",
                "parameters": {"pointerType": "mouse"},
                "actions": [{"type": "pointerMove", "duration": 0, "x": 0, "y": 0,
                             "origin": {ELEMENT: id}}]
            }]})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn script(&self, js: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
        .await
    }

    async fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = self.script("return document.body.innerText").await;
            if body.as_str().unwrap_or("").contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the window never showed {text:?}; it shows: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn register(url: &str, name: &str) -> Api {
    let api = Api::new(url).expect("api");
    api.register(&RegisterRequest {
        username: name.into(),
        email: format!("{name}@example.org"),
        password: "correct horse battery".into(),
        display_name: None,
        invite: None,
    })
    .await
    .expect("register");
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_through_the_real_window() {
    require("Xvfb", "xvfb");
    require("WebKitWebDriver", "webkit2gtk-driver");
    require("keyctl", "keyutils");
    require("xdotool", "xdotool");
    require("xmessage", "x11-utils");
    require("ffmpeg", "ffmpeg");
    let tauri_driver = std::env::var_os("TAURI_DRIVER")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            let p = PathBuf::from(home).join(".cache/chatapp/cargo-tools/bin/tauri-driver");
            p.exists().then_some(p)
        })
        .or_else(|| {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("tauri-driver"))
                    .find(|p| p.is_file())
            })
        })
        .expect("tauri-driver is missing: cargo install tauri-driver --locked (see .ci/run)");

    let mut server = start_server().await;
    let url = server.base.clone();
    let ann = register(&url, "ann").await;
    let ben = register(&url, "ben").await;
    let ann_id = ann.me().await.expect("me").id;
    let chat = ben.direct_conversation(ann_id).await.expect("direct");
    let (ben_rt, mut ben_events) = Realtime::start(ben.clone(), RealtimeOptions::default());

    let (_x, display) = xvfb();
    let home = private_dir();
    let runtime = private_dir();
    // The system's audio: PulseAudio whose default source hears what is played into its
    // null sink, for the app's own HOME and XDG_RUNTIME_DIR.
    let work = tempfile::tempdir().expect("work dir");
    let rig = support::PulseRig::start(home.path(), runtime.path(), work.path(), SPEECH);
    // A session bus with a notification server (dunst) drawing on the same display.
    let (_bus, bus) = support::session_bus(runtime.path());
    let _dunst = support::dunst(&display, &bus, runtime.path());
    let dunstctl = |args: &[&str]| -> String {
        Command::new("dunstctl")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let port = free_port();
    let native = free_port();
    let mut driver = Command::new("keyctl");
    driver
        .args(["session", "-"])
        .arg(&tauri_driver)
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("DISPLAY", &display)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("XDG_DATA_HOME", home.path().join(".local/share"))
        .env("XDG_CACHE_HOME", home.path().join(".cache"))
        .env("CHATAPP_KEYCHAIN", "kernel")
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _driver = Daemon::spawn("tauri-driver", &mut driver);

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let session = loop {
        let r = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "wry",
                "tauri:options": {"application": env!("CARGO_BIN_EXE_chatapp-desktop")}
            }}}))
            .send()
            .await;
        if let Ok(r) = r
            && let Ok(v) = r.json::<Value>().await
            && let Some(id) = v["value"]["sessionId"].as_str()
        {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "tauri-driver gave no session");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let d = Driver {
        http: http.clone(),
        base: format!("{base}/session/{session}"),
    };

    // First start: the server's address, then the same sign-in screen as in a browser.
    d.type_into("#server-url", &url).await;
    d.click("#server-connect").await;
    d.type_into("#login", "ann").await;
    d.type_into("#password", "correct horse battery").await;
    d.click("#sign-in").await;
    d.click(&format!("li[data-conversation-id=\"{}\"] button", chat.id))
        .await;
    d.type_into("#composer-input", "hello from the desktop app")
        .await;
    d.click("#send").await;

    // Ben receives it live.
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = ben_events.recv().await {
            if let Event::Server(ServerEvent::Message { message }) = e
                && message.body == "hello from the desktop app"
            {
                return message;
            }
        }
        panic!("ben's events ended");
    })
    .await
    .expect("ben received the app's message");
    assert_eq!(got.sender_id, ann_id);

    // Ben answers; the window shows it.
    ben_rt.send(chat.id, "hello back from ben");
    d.wait_for_text("hello back from ben").await;
    screenshot(&display, "desktop-conversation.png");

    // A voice message recorded natively while speech plays into the capture device,
    // stopped, previewed and sent from the window: Ben receives the speech.
    d.click("#record").await;
    d.find("#voice-stop").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut player = rig.play();
    support::wait_for(&mut player.child, Duration::from_secs(30), "paplay");
    tokio::time::sleep(Duration::from_millis(400)).await;
    d.click("#voice-stop").await;
    d.find("#voice-preview").await;
    // The person can listen before sending: WebKit reads the WAV's length.
    let deadline = Instant::now() + Duration::from_secs(30);
    let preview_secs = loop {
        let v = d
            .script("const a = document.querySelector('#voice-preview'); return a && a.readyState >= 1 ? a.duration : null")
            .await;
        if let Some(secs) = v.as_f64() {
            break secs;
        }
        assert!(Instant::now() < deadline, "the preview never loaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    screenshot(&display, "desktop-voice-preview.png");
    d.click("#voice-send").await;
    let voice = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = ben_events.recv().await {
            if let Event::Server(ServerEvent::Message { message }) = e
                && message.kind == MessageKind::Voice
            {
                return message;
            }
        }
        panic!("ben's events ended");
    })
    .await
    .expect("ben received the voice message");
    assert_eq!(voice.sender_id, ann_id);
    let attachment = voice.attachment.expect("attachment");
    // Recorded as WAV, kept and served as Ogg Opus.
    assert_eq!(attachment.mime, "audio/ogg; codecs=opus");
    let file = ben.download(&attachment.url).await.expect("download");
    let (recorded_secs, heard_secs, heard_rms) = speech_in(&support::decoded_to_wav(&file.bytes));
    let (speech_secs, speech_rms) = {
        let bytes = std::fs::read(&rig.speech).expect("speech");
        let (_, loud, rms) = speech_in(&bytes);
        (loud, rms)
    };
    eprintln!(
        "voice: {recorded_secs:.2} s recorded, {heard_secs:.2} s of speech (played {speech_secs:.2} s), rms {heard_rms:.3} ({speech_rms:.3})"
    );
    let duration_ms = attachment.duration_ms.expect("duration") as f32;
    assert!((duration_ms / 1000.0 - recorded_secs).abs() < 0.1);
    assert!(
        (preview_secs as f32 - recorded_secs).abs() < 0.1,
        "previewed {preview_secs} s of {recorded_secs} s"
    );
    assert!(recorded_secs > speech_secs, "the whole speech was recorded");
    assert!(
        (heard_secs - speech_secs).abs() < 0.4,
        "heard {heard_secs} s of {speech_secs} s"
    );
    assert!(
        heard_rms > speech_rms * 0.5 && heard_rms < speech_rms * 2.0,
        "rms {heard_rms} vs {speech_rms}"
    );
    d.find(".timeline .voice-player").await;
    // Recorded natively, measured on the server: ben gets its 64-peak waveform.
    assert_eq!(attachment.waveform.len(), 64, "a waveform for ben");
    assert!(attachment.waveform.contains(&255));

    // Played receipts: ben plays ann's message, and her window's microphone turns
    // played, live; then the other way round.
    d.find(".played-state[data-played=\"false\"]").await;
    ben.mark_played(chat.id, voice.seq)
        .await
        .expect("ben played it");
    d.find(".played-state[data-played=\"true\"]").await;
    // ann plays one of ben's in the window, and the server records it (ben's copy says
    // so). A tap that did not start it (its audio still loading) is tapped again, as a
    // person would; if it never plays, what the element said is in the failure.
    let from_ben = ben
        .upload_voice(
            chat.id,
            chatapp_client::Upload::new(file.bytes.clone(), "ben.opus", "audio/ogg"),
        )
        .await
        .expect("ben's voice message");
    let ben_row = format!("[data-message-id=\"{}\"]", from_ben.id);
    d.click(&format!("{ben_row} .voice-toggle")).await;
    let state_js = format!(
        "const a = document.querySelector('{ben_row} audio'); \
         const e = document.querySelector('{ben_row} .voice-error'); \
         return a ? {{played: a.played.length, paused: a.paused, ready: a.readyState, \
         network: a.networkState, media_error: a.error && a.error.code, said: e && e.textContent}} : null"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tapped = Instant::now();
    loop {
        let page = ben.history(chat.id, None, None).await.expect("history");
        if page
            .messages
            .iter()
            .any(|m| m.id == from_ben.id && m.played_by.iter().any(|p| p.user_id == ann_id))
        {
            break;
        }
        let state = d.script(&state_js).await;
        assert!(
            Instant::now() < deadline,
            "ann's play never reached the server; the player: {state}"
        );
        if state["played"].as_u64() == Some(0) && tapped.elapsed() > Duration::from_secs(3) {
            d.click(&format!("{ben_row} .voice-toggle")).await;
            tapped = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let xdotool = |args: &[&str]| -> String {
        Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &display)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };

    // A photo through the system's file chooser: the attach button opens GTK's dialog over
    // the window, a person types the file's path into it, the preview takes a caption,
    // ben receives the photo with its sizes and thumbnail, and the window shows the
    // thumbnail (through `chatmedia:`) in the box reserved for it.
    let picture = work.path().join("harbour.jpg");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc=size=640x480", "-frames:v", "1"])
        .arg(&picture)
        .status()
        .expect("ffmpeg (apt-get install ffmpeg)");
    assert!(made.success());
    // (A closed chooser may stay as an unmapped window: only visible ones count.)
    let chooser = ["search", "--onlyvisible", "--name", "^Send a photo$"];
    d.click("#attach-photo").await;
    support::eventually(Duration::from_secs(30), "the file chooser open", || {
        !xdotool(&chooser).is_empty()
    });
    // Larger than the screen, and with no window manager to place it: its top, where the
    // path is typed, into view.
    xdotool(&[&chooser[..], &["windowmove", "0", "0"]].concat());
    xdotool(&[&chooser[..], &["windowfocus", "--sync"]].concat());
    tokio::time::sleep(Duration::from_millis(500)).await;
    xdotool(&["key", "--clearmodifiers", "ctrl+l"]);
    xdotool(&[
        "type",
        "--delay",
        "20",
        picture.to_str().expect("a UTF-8 path"),
    ]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot(&display, "desktop-photo-chooser.png");
    // Enter opens the file (a completion shown under the path may take the first one).
    support::eventually(Duration::from_secs(30), "the file chooser closed", || {
        if xdotool(&chooser).is_empty() {
            return true;
        }
        xdotool(&[&chooser[..], &["windowfocus", "--sync"]].concat());
        xdotool(&["key", "Return"]);
        std::thread::sleep(Duration::from_millis(700));
        false
    });
    d.find("#photo-preview-image").await;
    d.type_into("#photo-caption", "the harbour").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screenshot(&display, "desktop-photo-preview.png");
    d.click("#photo-send").await;
    let photo = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = ben_events.recv().await {
            if let Event::Server(ServerEvent::Message { message }) = e
                && message.kind == MessageKind::Photo
            {
                return message;
            }
        }
        panic!("ben's events ended");
    })
    .await
    .expect("ben received the photo");
    assert_eq!(photo.sender_id, ann_id);
    assert_eq!(photo.body, "the harbour");
    let file = photo.attachment.expect("the photo's file");
    assert_eq!((file.width, file.height), (Some(640), Some(480)));
    let thumb = file.thumbnail.expect("a thumbnail");
    assert_eq!((thumb.width, thumb.height), (480, 360));
    assert_eq!(
        ben.download(&file.url)
            .await
            .expect("download")
            .content_type
            .as_deref(),
        Some("image/jpeg")
    );
    let shown = format!(
        ".msg-row[data-message-id=\"{}\"] .photo-thumb img",
        photo.id
    );
    support::eventually_async(
        Duration::from_secs(30),
        "the thumbnail shown in the window",
        async || {
            let loaded = d
                .script(&format!(
                    "const i = document.querySelector('{shown}'); \
                     return i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : null"
                ))
                .await;
            (loaded.as_u64() == Some(480)).then_some(())
        },
    )
    .await;
    // The pointer off the timeline, so that no message shows its hover actions.
    xdotool(&["mousemove", "5", "790"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    screenshot(&display, "desktop-photo.png");

    // No token in the webview: no cookie, nothing like a token in its storage.
    let cookie = d.script("return document.cookie").await;
    assert_eq!(cookie, json!(""));
    let token = ann.token().expect("ann's own token");
    let storage = d
        .script("return JSON.stringify(Object.assign({}, localStorage))")
        .await;
    assert!(
        !storage
            .as_str()
            .unwrap_or("")
            .contains(&token[..8.min(token.len())])
    );

    // Someone else writes while the window is not in front: a notification, and clicking
    // it opens that conversation in the window. (Another window takes the focus.)
    let mut other = Command::new("xmessage");
    other
        .args(["-geometry", "+0+0", "elsewhere"])
        .env("DISPLAY", &display)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _other = Daemon::spawn("xmessage", &mut other);
    support::eventually(Duration::from_secs(30), "the other window focused", || {
        xdotool(&["search", "--name", "^xmessage$", "windowfocus", "--sync"]);
        xdotool(&["getwindowfocus", "getwindowname"]) == "xmessage"
    });
    let cat = register(&url, "cat").await;
    let cat_chat = cat.direct_conversation(ann_id).await.expect("direct");
    cat.send_message(cat_chat.id, "lunch at one?", None)
        .await
        .expect("cat writes");
    support::eventually(Duration::from_secs(30), "the notification shown", || {
        dunstctl(&["count", "displayed"]) == "1"
    });
    screenshot(&display, "desktop-notification.png");
    dunstctl(&["action", "0"]);
    let want = format!("#/c/{}", cat_chat.id);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hash = d.script("return location.hash").await;
        if hash.as_str() == Some(want.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the click did not open the conversation: {hash}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.wait_for_text("lunch at one?").await;
    screenshot(&display, "desktop-notification-opened.png");

    // The window has no status bar: pointing at a link shows where it goes.
    cat.send_message(
        cat_chat.id,
        "the menu: https://example.org/lunch?day=mon",
        None,
    )
    .await
    .expect("cat writes a link");
    d.hover(".timeline a[href^=\"https://example.org/\"]").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = d
            .script(
                "const b = document.querySelector('#link-target'); return b ? b.innerText : null",
            )
            .await;
        if shown.as_str() == Some("https://example.org/lunch?day=mon") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the link's destination was not shown: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot(&display, "desktop-link-target.png");
    let history = dunstctl(&["history"]);
    assert!(history.contains("lunch at one?"), "{history}");

    // Messages that change, from the window: a reaction, a reply, its edit, a deletion,
    // a search that opens its result, a mention's highlight, mute. Cat sees each through
    // the API.
    let lunch = cat
        .history(cat_chat.id, None, Some(10))
        .await
        .expect("history")
        .messages
        .into_iter()
        .find(|m| m.body == "lunch at one?")
        .expect("cat's message");
    let row = format!(".msg-row[data-message-id=\"{}\"]", lunch.id);
    // Waits until cat's newest messages show what `check` looks for.
    let cat_history_until = async |what: &str, check: &dyn Fn(Vec<Message>) -> Option<Message>| {
        support::eventually_async(Duration::from_secs(30), what, async || {
            let page = cat
                .history(cat_chat.id, None, Some(20))
                .await
                .expect("history");
            check(page.messages)
        })
        .await
    };
    d.hover(&row).await;
    d.click(&format!("{row} .quick-react")).await;
    cat_history_until("cat sees the reaction", &|messages| {
        messages
            .into_iter()
            .find(|m| m.id == lunch.id && m.reactions.iter().any(|r| r.user_ids == [ann_id]))
    })
    .await;
    d.hover(&row).await;
    d.click(&format!("{row} .msg-actions .reply")).await;
    d.find("#compose-context").await;
    d.type_into("#composer-input", "yes").await;
    d.click("#send").await;
    let reply = cat_history_until("cat gets the reply", &|messages| {
        messages
            .into_iter()
            .find(|m| m.body == "yes" && m.reply_to.as_ref().is_some_and(|q| q.id == lunch.id))
    })
    .await;
    let mine = format!(".msg-row[data-message-id=\"{}\"]", reply.id);
    d.hover(&mine).await;
    d.click(&format!("{mine} .msg-actions .edit")).await;
    d.type_into("#composer-input", " please").await;
    d.click("#send").await;
    cat_history_until("cat sees the edit", &|messages| {
        messages
            .into_iter()
            .find(|m| m.id == reply.id && m.body == "yes please" && m.edited_at.is_some())
    })
    .await;
    d.find(&format!("{mine} .edited")).await;
    screenshot(&display, "desktop-changes.png");
    d.script("window.confirm = () => true; return null").await;
    d.hover(&mine).await;
    d.click(&format!("{mine} .msg-actions .delete")).await;
    d.find(&format!("{mine} .tombstone")).await;
    cat_history_until("cat sees the deletion", &|messages| {
        messages
            .into_iter()
            .find(|m| m.id == reply.id && m.deleted_at.is_some() && m.body.is_empty())
    })
    .await;
    cat.send_message(cat_chat.id, "@ann are you coming?", None)
        .await
        .expect("cat mentions ann");
    d.find(".bubble.mentions-me").await;
    d.type_into("#message-search", "lunch").await;
    d.find("#message-results mark").await;
    screenshot(&display, "desktop-search.png");
    d.click(&format!(
        "#message-results .result-item[data-message-id=\"{}\"]",
        lunch.id
    ))
    .await;
    d.find(&format!("{row}.highlight")).await;
    d.click("#mute-toggle").await;
    d.find("#mute-toggle[aria-pressed=\"true\"]").await;
    assert!(ann.conversation(cat_chat.id).await.expect("conv").muted);

    // Any emoji from the picker, found by name; a mention chosen in the `@` picker.
    d.hover(&row).await;
    d.click(&format!("{row} .msg-actions .more-react")).await;
    d.type_into("#emoji-search", "party popper").await;
    d.click("#emoji-picker .emoji-option[data-emoji=\"🎉\"]")
        .await;
    cat_history_until("cat sees the picked reaction", &|messages| {
        messages
            .into_iter()
            .find(|m| m.id == lunch.id && m.reactions.iter().any(|r| r.emoji == "🎉"))
    })
    .await;
    d.type_into("#composer-input", "see you there @ca").await;
    d.click("#mention-picker .mention-option[data-username=\"cat\"]")
        .await;
    d.type_into("#composer-input", "bring the map").await;
    d.click("#send").await;
    let cat_id = cat.me().await.expect("me").id;
    cat_history_until("cat is mentioned", &|messages| {
        messages
            .into_iter()
            .find(|m| m.body == "see you there @cat bring the map" && m.mentions == [cat_id])
    })
    .await;

    // ann (the server's first account) is its admin: the admin screen, through the
    // desktop's commands, disables ben (his session ends at once) and enables him again.
    d.click("#admin-button").await;
    d.find("#admin-view").await;
    let ben_row = "#admin-users tr[data-username=\"ben\"]";
    d.wait_for_text("ben@example.org").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screenshot(&display, "desktop-admin.png");
    d.click(&format!("{ben_row} .toggle-disabled")).await;
    d.find(&format!("{ben_row} .badge-disabled")).await;
    ben.me()
        .await
        .expect_err("ben's session ended when he was disabled");
    let refused = Api::new(&url)
        .expect("client")
        .login("ben", "correct horse battery")
        .await
        .expect_err("a disabled account cannot sign in");
    assert!(refused.to_string().contains("disabled"), "{refused}");
    d.click(&format!("{ben_row} .toggle-disabled")).await;
    d.find(&format!(
        "{ben_row} .toggle-disabled[data-disabled=\"false\"]"
    ))
    .await;
    Api::new(&url)
        .expect("client")
        .login("ben", "correct horse battery")
        .await
        .expect("ben is enabled again");
    d.click("#admin-tab-log").await;
    d.find("#admin-log tr[data-action=\"enable\"]").await;
    d.find("#admin-log tr[data-action=\"disable\"]").await;

    // The server is gone: the sign-out cannot be confirmed, so the window stays signed in
    // and says so (the token stays in the keychain); "sign out on this computer only"
    // then forgets the session here and returns to the sign-in screen.
    server.stop();
    d.click("#sign-out").await;
    d.find("#sign-out-failed").await;
    d.wait_for_text("Could not sign out").await;
    d.find("#sign-out").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screenshot(&display, "desktop-sign-out-failed.png");
    d.click("#sign-out-here").await;
    d.find("#sign-in").await;

    let _ = http
        .delete(format!("{base}/session/{session}"))
        .send()
        .await;
    ben_rt.shutdown().await;
}

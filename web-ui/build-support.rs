// The web UI build shared by the build scripts of the server (which embeds
// `web-ui/dist`) and the desktop app (whose frontend it is): both `include!` this file.
// Needs Node.js and npm only when `dist` is missing or older than its sources.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

const INPUTS: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vite.config.ts",
    "svelte.config.js",
];

/// Builds `web-ui/dist` when it is missing or older than its sources (`scripts/test`
/// builds the UI first, so the server's and the desktop's build scripts never run npm at
/// once there).
fn ensure_web_ui() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-ui");
    for input in INPUTS {
        println!("cargo:rerun-if-changed=../web-ui/{input}");
    }
    println!("cargo:rerun-if-env-changed=CHATAPP_SKIP_UI_BUILD");
    let dist_index = ui.join("dist/index.html");
    let built = mtime(&dist_index);
    let newest_input = INPUTS.iter().filter_map(|i| newest(&ui.join(i))).max();
    let stale = match (built, newest_input) {
        (None, _) => true,
        (Some(built), Some(input)) => input > built,
        (Some(_), None) => false,
    };
    if !stale {
        return;
    }
    if std::env::var_os("CHATAPP_SKIP_UI_BUILD").is_some() && built.is_some() {
        println!(
            "cargo:warning=web-ui/dist is older than its sources (CHATAPP_SKIP_UI_BUILD is set)"
        );
        return;
    }
    if Command::new("npm").arg("--version").output().is_err() {
        panic!(
            "web-ui/dist is missing or stale and npm was not found. Install Node.js 20+ and npm \
             (Debian: apt-get install nodejs npm), or build it yourself with \
             `cd web-ui && npm ci && npm run build`."
        );
    }
    let installed = mtime(&ui.join("node_modules/.package-lock.json"));
    let lock = mtime(&ui.join("package-lock.json"));
    if installed.is_none() || lock > installed {
        run(&ui, &["ci", "--no-audit", "--no-fund"]);
    }
    run(&ui, &["run", "build"]);
}

fn run(dir: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("running npm {}: {e}", args.join(" ")));
    assert!(
        status.success(),
        "npm {} failed in web-ui/ ({status})",
        args.join(" ")
    );
}

fn mtime(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// The newest modification time of `path` or anything under it.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = path.metadata().ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let mut stack: Vec<PathBuf> = vec![path.to_path_buf()];
    let mut best = meta.modified().ok();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(t) = mtime(&p) {
                best = best.max(Some(t));
            }
        }
    }
    best
}

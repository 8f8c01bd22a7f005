//! The tray icon (where the desktop has a tray) and the unread total in the window title.

use tauri::tray::{MouseButton, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};

const TRAY: &str = "main";

/// Brings the main window to the front where it was (tray click, second launch, a
/// clicked notification). Only a hidden window is shown again: showing a minimized one
/// maps it anew, and the window manager would place it somewhere else.
pub fn focus_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        if w.is_minimized().unwrap_or(false) {
            let _ = w.unminimize();
        } else if !w.is_visible().unwrap_or(true) {
            let _ = w.show();
        }
        let _ = w.set_focus();
    }
}

/// Adds the tray icon. A desktop without a tray (or without the indicator library) just
/// has none: that is not an error for the app.
pub fn install<R: Runtime>(app: &AppHandle<R>) {
    let Some(icon) = app.default_window_icon().cloned() else {
        return;
    };
    let built = TrayIconBuilder::with_id(TRAY)
        .icon(icon)
        .tooltip("ChatApp")
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                ..
            } = event
            {
                focus_main(tray.app_handle());
            }
        })
        .build(app);
    if let Err(e) = built {
        tracing::info!(error = %e, "no tray icon");
    }
}

pub fn title_for(count: u32) -> String {
    if count > 0 {
        format!("({count}) ChatApp")
    } else {
        "ChatApp".to_owned()
    }
}

pub fn show_unread<R: Runtime>(app: &AppHandle<R>, count: u32) {
    let title = title_for(count);
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.set_title(&title);
    }
    if let Some(tray) = app.tray_by_id(TRAY) {
        let _ = tray.set_tooltip(Some(&title));
        let label = (count > 0).then(|| count.to_string());
        let _ = tray.set_title(label.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::title_for;

    #[test]
    fn the_unread_total_leads_the_title() {
        assert_eq!(title_for(0), "ChatApp");
        assert_eq!(title_for(3), "(3) ChatApp");
    }
}

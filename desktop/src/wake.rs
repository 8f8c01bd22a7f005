//! Coming back after the machine slept: the realtime connection is told to reconnect at
//! once instead of waiting for its pings to notice a dead socket or for its backoff to
//! run out. The network coming back is reported by the webview (`online`) and handled the
//! same way (the `realtime_reconnect` command).
//!
//! Sleep is noticed portably: the monotonic clock (`Instant`) stops while the machine is
//! suspended on Linux and macOS, the wall clock does not, so a tick whose wall-clock
//! interval is much longer than its monotonic one spanned a sleep. (A wall clock set
//! forward by hand looks the same; one extra reconnect is harmless.)

use std::time::{Duration, Instant, SystemTime};

use tauri::{AppHandle, Manager, Runtime};

use crate::session::Session;

/// How often the clocks are compared.
pub const TICK: Duration = Duration::from_secs(5);
/// How much more wall-clock than monotonic time between two ticks counts as a sleep.
pub const SLEPT: Duration = Duration::from_secs(10);

/// Compares the two clocks from one tick to the next.
#[derive(Debug, Clone, Copy)]
pub struct SleepDetector {
    wall: SystemTime,
    mono: Instant,
}

impl SleepDetector {
    pub fn new(wall: SystemTime, mono: Instant) -> Self {
        Self { wall, mono }
    }

    /// The time the machine was away since the last check, when that was a sleep.
    pub fn check(&mut self, wall: SystemTime, mono: Instant) -> Option<Duration> {
        let wall_passed = wall.duration_since(self.wall).unwrap_or_default();
        let mono_passed = mono.saturating_duration_since(self.mono);
        self.wall = wall;
        self.mono = mono;
        let away = wall_passed.saturating_sub(mono_passed);
        (away >= SLEPT).then_some(away)
    }
}

/// Reconnects the realtime connection now, if there is one.
pub fn reconnect<R: Runtime>(app: &AppHandle<R>, why: &str) {
    if let Some(rt) = app.state::<Session>().realtime() {
        tracing::info!(why, "reconnecting now");
        rt.reconnect_now();
    }
}

/// Watches for sleeps for as long as the app runs.
pub fn watch<R: Runtime>(app: AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        let mut detector = SleepDetector::new(SystemTime::now(), Instant::now());
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(away) = detector.check(SystemTime::now(), Instant::now()) {
                tracing::info!(away_s = away.as_secs(), "the machine slept");
                reconnect(&app, "woke from sleep");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_that_spanned_a_sleep_is_noticed_once() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mono = Instant::now();
        let mut d = SleepDetector::new(wall, mono);
        // Ordinary ticks, a little late or early: nothing.
        assert_eq!(d.check(wall + TICK, mono + TICK), None);
        assert_eq!(
            d.check(
                wall + TICK * 2 + Duration::from_secs(3),
                mono + TICK * 2 + Duration::from_millis(2900)
            ),
            None
        );
        // Suspended for an hour: the wall clock moved on, the monotonic one did not.
        let (w, m) = (
            wall + TICK * 3 + Duration::from_secs(3603),
            mono + TICK * 3 + Duration::from_secs(3),
        );
        let away = d.check(w, m).expect("a sleep");
        // An hour, less the 0.1 s the previous tick's wall clock ran ahead.
        assert_eq!(away, Duration::from_millis(3_599_900));
        // The next ordinary tick is ordinary again.
        assert_eq!(d.check(w + TICK, m + TICK), None);
    }

    #[test]
    fn a_wall_clock_set_back_is_not_a_sleep() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mono = Instant::now();
        let mut d = SleepDetector::new(wall, mono);
        assert_eq!(d.check(wall - Duration::from_secs(600), mono + TICK), None);
    }
}

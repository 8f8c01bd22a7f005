//! Native voice recording: cpal captures the default input device in whatever rate and
//! sample format it offers, every frame is mixed to mono and written by hound as a 16-bit
//! mono WAV. Level and elapsed time are reported as they change; pause leaves the paused
//! span out; recording stops by itself before the server's 16 MB limit; a device that
//! disappears (an error from the stream, or no audio for a while) ends the recording with
//! what was captured kept.
//!
//! cpal's stream is not `Send` on every platform, so it lives on a thread of its own that
//! owns the WAV writer; the handle talks to it over a channel. This module knows nothing
//! of Tauri: the app turns [`RecorderEvent`]s into window events. [`Recordings`] is the
//! app's recorder state: the recording in progress and the finished ones until they are
//! sent or discarded.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use serde::Serialize;

/// The server refuses voice uploads over 16 MB; stop a little before.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024 - 64 * 1024;
/// Frames per cpal callback (a fixed size: steady latency for the level meter).
pub const DEFAULT_BUFFER_FRAMES: u32 = 1024;
const WAV_HEADER_BYTES: u64 = 44;
const LEVEL_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// Where the WAV file is written.
    pub path: PathBuf,
    /// Size of the WAV file (header included) at which recording stops by itself.
    pub max_bytes: u64,
    pub buffer_frames: u32,
    /// With no audio at all for this long (not paused), the device counts as lost.
    pub stall_timeout: Duration,
}

impl RecorderConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            buffer_frames: DEFAULT_BUFFER_FRAMES,
            stall_timeout: Duration::from_secs(3),
        }
    }
}

/// What the UI hears while recording.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecorderEvent {
    /// Peak level (0–1) of the latest audio and the recorded time so far.
    Level {
        level: f32,
        elapsed_ms: u64,
    },
    Paused {
        elapsed_ms: u64,
    },
    Resumed {
        elapsed_ms: u64,
    },
    /// The recording ended on its own (size limit or lost device); call `finish`.
    Ended {
        reason: EndReason,
        message: String,
        elapsed_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    SizeLimit,
    DeviceLost,
}

/// A finished recording: a 16-bit mono WAV at the device's rate.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Recorded {
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub path: PathBuf,
    pub duration_ms: u64,
    pub bytes: u64,
    pub sample_rate: u32,
    /// Why it ended by itself, if it did.
    pub ended: Option<EndReason>,
    /// A message for the person when it did.
    pub message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error(
        "No microphone was found. Connect one (or choose an input device in your sound settings) and try again."
    )]
    NoDevice,
    #[error("The microphone could not be opened: {0}")]
    Open(String),
    #[error("The recording could not be written: {0}")]
    Write(String),
    #[error("The recorder stopped unexpectedly.")]
    Gone,
}

enum Msg {
    Audio(Vec<f32>),
    StreamError(String),
    Pause,
    Resume,
    Finish,
    Cancel,
}

/// A recording in progress. Dropping it cancels it.
pub struct Recording {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<Result<Option<Recorded>, RecorderError>>>,
}

impl Recording {
    /// Opens the default input device and starts recording into `config.path`.
    pub fn start(
        config: RecorderConfig,
        on_event: impl Fn(RecorderEvent) + Send + 'static,
    ) -> Result<Self, RecorderError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let audio_tx = tx.clone();
        let thread = std::thread::Builder::new()
            .name("chatapp-recorder".into())
            .spawn(move || run(config, audio_tx, rx, ready_tx, on_event))
            .map_err(|e| RecorderError::Open(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                tx,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(RecorderError::Gone)
            }
        }
    }

    pub fn pause(&self) {
        let _ = self.tx.send(Msg::Pause);
    }

    pub fn resume(&self) {
        let _ = self.tx.send(Msg::Resume);
    }

    /// Stops (if it has not ended by itself) and returns the finished WAV.
    pub fn finish(mut self) -> Result<Recorded, RecorderError> {
        let _ = self.tx.send(Msg::Finish);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(Some(r)))) => Ok(r),
            Some(Ok(Err(e))) => Err(e),
            _ => Err(RecorderError::Gone),
        }
    }

    /// Stops and deletes the file.
    pub fn cancel(mut self) {
        self.cancel_inner();
    }

    fn cancel_inner(&mut self) {
        let _ = self.tx.send(Msg::Cancel);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.cancel_inner();
        }
    }
}

/// Mixes interleaved frames of `channels` samples to mono by averaging.
pub fn mix_to_mono(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// A float sample (−1…1) as a 16-bit PCM sample, clamped.
pub fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16
}

fn build_stream<T>(
    device: &cpal::Device,
    config: StreamConfig,
    tx: Sender<Msg>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    let err_tx = tx.clone();
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            let samples: Vec<f32> = data
                .iter()
                .map(|s| <f32 as FromSample<T>>::from_sample_(*s))
                .collect();
            let _ = tx.send(Msg::Audio(samples));
        },
        move |err: cpal::Error| {
            use cpal::ErrorKind as K;
            match err.kind() {
                // Passing hiccups: the stream goes on.
                K::Xrun | K::DeviceChanged | K::RealtimeDenied => {
                    tracing::debug!(%err, "audio input notice");
                }
                _ => {
                    let _ = err_tx.send(Msg::StreamError(err.to_string()));
                }
            }
        },
        Some(Duration::from_secs(5)),
    )
}

fn open_stream(
    buffer_frames: u32,
    tx: Sender<Msg>,
) -> Result<(cpal::Stream, u32, usize), RecorderError> {
    let host = cpal::default_host();
    let device = host.default_input_device().ok_or(RecorderError::NoDevice)?;
    let supported = device.default_input_config().map_err(|e| {
        if e.kind() == cpal::ErrorKind::DeviceNotAvailable {
            RecorderError::NoDevice
        } else {
            RecorderError::Open(e.to_string())
        }
    })?;
    let rate = supported.sample_rate();
    let channels = supported.channels() as usize;
    let format = supported.sample_format();
    let fixed = match *supported.buffer_size() {
        cpal::SupportedBufferSize::Range { min, max } => buffer_frames.clamp(min, max),
        _ => buffer_frames,
    };
    tracing::info!(%device, rate, channels, %format, buffer = fixed, "recording from the default input");
    let mut config = supported.config();
    config.buffer_size = cpal::BufferSize::Fixed(fixed);
    let build = |config: StreamConfig| -> Result<cpal::Stream, cpal::Error> {
        let tx = tx.clone();
        match format {
            SampleFormat::I8 => build_stream::<i8>(&device, config, tx),
            SampleFormat::I16 => build_stream::<i16>(&device, config, tx),
            SampleFormat::I32 => build_stream::<i32>(&device, config, tx),
            SampleFormat::U8 => build_stream::<u8>(&device, config, tx),
            SampleFormat::U16 => build_stream::<u16>(&device, config, tx),
            SampleFormat::U32 => build_stream::<u32>(&device, config, tx),
            SampleFormat::F64 => build_stream::<f64>(&device, config, tx),
            _ => build_stream::<f32>(&device, config, tx),
        }
    };
    let stream = build(config).map_err(|e| RecorderError::Open(e.to_string()))?;
    stream
        .play()
        .map_err(|e| RecorderError::Open(e.to_string()))?;
    Ok((stream, rate, channels))
}

struct Writer {
    wav: hound::WavWriter<BufWriter<File>>,
    frames: u64,
    rate: u32,
}

impl Writer {
    fn create(path: &Path, rate: u32) -> Result<Self, RecorderError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::create(path, spec)
            .map_err(|e| RecorderError::Write(e.to_string()))?;
        Ok(Self {
            wav,
            frames: 0,
            rate,
        })
    }

    fn bytes(&self) -> u64 {
        WAV_HEADER_BYTES + self.frames * 2
    }

    fn elapsed_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(self.rate.max(1))
    }
}

fn run(
    config: RecorderConfig,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    ready: Sender<Result<(), RecorderError>>,
    on_event: impl Fn(RecorderEvent),
) -> Result<Option<Recorded>, RecorderError> {
    let (stream, rate, channels) = match open_stream(config.buffer_frames, tx) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(None);
        }
    };
    let mut w = match Writer::create(&config.path, rate) {
        Ok(w) => w,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(None);
        }
    };
    let _ = ready.send(Ok(()));

    let mut paused = false;
    let mut peak = 0f32;
    let mut last_level = Instant::now();
    let mut last_audio = Instant::now();
    let mut ended: Option<(EndReason, String)> = None;
    let mut write_error: Option<String> = None;
    let max_frames = config.max_bytes.saturating_sub(WAV_HEADER_BYTES) / 2;

    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Some(Msg::Audio(samples)) => {
                last_audio = Instant::now();
                if paused {
                    continue;
                }
                for s in mix_to_mono(&samples, channels) {
                    if w.frames >= max_frames {
                        ended = Some((
                            EndReason::SizeLimit,
                            "Recording stopped at the size limit.".into(),
                        ));
                        break;
                    }
                    peak = peak.max(s.abs());
                    if let Err(e) = w.wav.write_sample(to_i16(s)) {
                        write_error = Some(e.to_string());
                        break;
                    }
                    w.frames += 1;
                }
                if write_error.is_some() || ended.is_some() {
                    break;
                }
                if last_level.elapsed() >= LEVEL_EVERY {
                    on_event(RecorderEvent::Level {
                        level: peak.min(1.0),
                        elapsed_ms: w.elapsed_ms(),
                    });
                    peak = 0.0;
                    last_level = Instant::now();
                }
            }
            Some(Msg::StreamError(e)) => {
                ended = Some((
                    EndReason::DeviceLost,
                    format!("The microphone stopped working ({e}). What was recorded is kept."),
                ));
                break;
            }
            Some(Msg::Pause) => {
                paused = true;
                on_event(RecorderEvent::Paused {
                    elapsed_ms: w.elapsed_ms(),
                });
            }
            Some(Msg::Resume) => {
                paused = false;
                last_audio = Instant::now();
                on_event(RecorderEvent::Resumed {
                    elapsed_ms: w.elapsed_ms(),
                });
            }
            Some(Msg::Finish) => break,
            Some(Msg::Cancel) => {
                drop(stream);
                drop(w);
                let _ = std::fs::remove_file(&config.path);
                return Ok(None);
            }
            None => {}
        }
        if !paused && last_audio.elapsed() >= config.stall_timeout {
            ended = Some((
                EndReason::DeviceLost,
                "The microphone stopped sending sound. What was recorded is kept.".into(),
            ));
            break;
        }
    }
    let duration_ms = w.elapsed_ms();
    let bytes = w.bytes();
    let finalized = w.wav.finalize();
    if matches!(ended, Some((EndReason::DeviceLost, _))) {
        // Closing a stream whose device is gone can block for as long as the backend
        // waits on it: let a thread of its own do that, and keep what was recorded.
        let _ = std::thread::Builder::new()
            .name("chatapp-recorder-close".into())
            .spawn(move || drop(stream));
    } else {
        drop(stream);
    }
    finalized.map_err(|e| RecorderError::Write(e.to_string()))?;
    if let Some(e) = write_error {
        return Err(RecorderError::Write(e));
    }
    if let Some((reason, message)) = &ended {
        on_event(RecorderEvent::Ended {
            reason: *reason,
            message: message.clone(),
            elapsed_ms: duration_ms,
        });
    }
    // Wait for `finish` (or `cancel`) so the caller collects the result in one place.
    if ended.is_some() {
        loop {
            match rx.recv() {
                Ok(Msg::Finish) | Err(_) => break,
                Ok(Msg::Cancel) => {
                    let _ = std::fs::remove_file(&config.path);
                    return Ok(None);
                }
                Ok(_) => {}
            }
        }
    }
    Ok(Some(Recorded {
        path: config.path,
        duration_ms,
        bytes,
        sample_rate: rate,
        ended: ended.as_ref().map(|(r, _)| *r),
        message: ended.map(|(_, m)| m),
    }))
}

/// The event the window gets while recording.
pub const RECORDER: &str = "chatapp://recorder";

/// A finished recording as the window sees it: an id to play, send or discard it by.
#[derive(Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RecordingInfo {
    pub id: u64,
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub recorded: Recorded,
}

/// The app's recordings: the one in progress, and the finished ones not sent or
/// discarded yet.
#[derive(Default)]
pub struct Recordings {
    active: Mutex<Option<Recording>>,
    done: Mutex<HashMap<u64, Recorded>>,
    next: AtomicU64,
}

impl Recordings {
    fn active(&self) -> MutexGuard<'_, Option<Recording>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn done(&self) -> MutexGuard<'_, HashMap<u64, Recorded>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts recording into a new WAV file in `dir` (a recording in progress is
    /// cancelled); `on_event` hears the level, pauses and an end by itself.
    pub fn start(
        &self,
        dir: &Path,
        on_event: impl Fn(RecorderEvent) + Send + 'static,
    ) -> Result<(), RecorderError> {
        let mut active = self.active();
        if let Some(old) = active.take() {
            old.cancel();
        }
        std::fs::create_dir_all(dir).map_err(|e| RecorderError::Write(e.to_string()))?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("recording-{}-{n}.wav", std::process::id()));
        *active = Some(Recording::start(RecorderConfig::new(path), on_event)?);
        Ok(())
    }

    pub fn pause(&self) {
        if let Some(r) = self.active().as_ref() {
            r.pause();
        }
    }

    pub fn resume(&self) {
        if let Some(r) = self.active().as_ref() {
            r.resume();
        }
    }

    pub fn cancel(&self) {
        if let Some(r) = self.active().take() {
            r.cancel();
        }
    }

    /// Finishes the recording in progress; it is kept until sent or discarded.
    pub async fn stop(&self) -> Result<RecordingInfo, RecorderError> {
        let r = self
            .active()
            .take()
            .ok_or_else(|| RecorderError::Write("Nothing is being recorded.".into()))?;
        let recorded = tokio::task::spawn_blocking(move || r.finish())
            .await
            .map_err(|e| RecorderError::Write(e.to_string()))??;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.done().insert(id, recorded.clone());
        Ok(RecordingInfo { id, recorded })
    }

    /// Where finished recording `id` is.
    pub fn path(&self, id: u64) -> Option<PathBuf> {
        self.done().get(&id).map(|r| r.path.clone())
    }

    /// Forgets finished recording `id` and deletes its file.
    pub fn discard(&self, id: u64) {
        if let Some(r) = self.done().remove(&id) {
            let _ = std::fs::remove_file(r.path);
        }
    }

    /// Sign-out: the recording in progress is cancelled and the finished ones forgotten.
    pub fn forget_all(&self) {
        self.cancel();
        self.done().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_is_averaged_to_mono() {
        assert_eq!(mix_to_mono(&[1.0, 0.0, -0.5, -0.5], 2), vec![0.5, -0.5]);
        assert_eq!(mix_to_mono(&[0.25, 0.5], 1), vec![0.25, 0.5]);
    }

    #[test]
    fn samples_are_clamped_to_16_bits() {
        assert_eq!(to_i16(2.0), i16::MAX);
        assert_eq!(to_i16(-2.0), -i16::MAX);
        assert_eq!(to_i16(0.0), 0);
    }
}

//! The browser's `VoiceRecorder`: MediaRecorder (Opus in WebM where available) with an
//! AnalyserNode for the level. Reports `ended` before the server's 16 MB limit; `stop()`
//! then hands over what was recorded.

import { errorMessage } from './client';
import type { RecordedAudio, RecorderUpdate, VoiceRecorder } from './recorder';

const LIMIT = 16 * 1024 * 1024 - 512 * 1024; // leave room for the container's last pages

function pickType(): string | undefined {
  for (const t of ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm', 'audio/mp4']) {
    if (typeof MediaRecorder !== 'undefined' && MediaRecorder.isTypeSupported(t)) return t;
  }
  return undefined;
}

export class BrowserVoiceRecorder implements VoiceRecorder {
  private stream: MediaStream | null = null;
  private recorder: MediaRecorder | null = null;
  private chunks: Blob[] = [];
  private bytes = 0;
  private audioCtx: AudioContext | null = null;
  private raf = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private runningSince = 0;
  private banked = 0;
  private paused = false;
  private notice: string | null = null;
  private onUpdate: (u: RecorderUpdate) => void = () => {};
  private level = 0;
  private stopped: Promise<RecordedAudio> | null = null;

  async start(onUpdate: (u: RecorderUpdate) => void): Promise<void> {
    this.onUpdate = onUpdate;
    if (typeof MediaRecorder === 'undefined' || !navigator.mediaDevices?.getUserMedia) {
      throw new Error('This browser cannot record audio.');
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      const name = e instanceof DOMException ? e.name : '';
      throw new Error(
        name === 'NotAllowedError' || name === 'SecurityError'
          ? 'Microphone access was refused. Allow it in the browser’s site settings to record.'
          : name === 'NotFoundError' || name === 'OverconstrainedError'
            ? 'No microphone was found. Connect one and try again.'
            : `The microphone could not be opened (${errorMessage(e)}).`,
      );
    }
    const mimeType = pickType();
    const recorder = new MediaRecorder(this.stream, mimeType ? { mimeType } : undefined);
    this.recorder = recorder;
    recorder.ondataavailable = (e) => {
      if (e.data.size === 0) return;
      this.chunks.push(e.data);
      this.bytes += e.data.size;
      if (this.bytes >= LIMIT && recorder.state !== 'inactive') {
        this.notice = 'Stopped at the size limit.';
        this.onUpdate({ kind: 'ended', message: this.notice, elapsedMs: this.elapsed() });
      }
    };
    recorder.start(1000);
    this.runningSince = performance.now();
    this.timer = setInterval(() => this.onUpdate({ kind: 'level', level: this.level, elapsedMs: this.elapsed() }), 100);
    this.meter(this.stream);
  }

  private elapsed(): number {
    return this.banked + (this.paused ? 0 : performance.now() - this.runningSince);
  }

  private meter(s: MediaStream): void {
    try {
      const ctx = new AudioContext();
      this.audioCtx = ctx;
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 512;
      ctx.createMediaStreamSource(s).connect(analyser);
      const buf = new Uint8Array(analyser.fftSize);
      const loop = () => {
        analyser.getByteTimeDomainData(buf);
        let peak = 0;
        for (const v of buf) peak = Math.max(peak, Math.abs(v - 128));
        this.level = this.paused ? 0 : Math.min(1, peak / 64);
        this.raf = requestAnimationFrame(loop);
      };
      loop();
    } catch {
      // no meter: recording still works
    }
  }

  pause(): void {
    if (this.recorder?.state !== 'recording') return;
    this.recorder.pause();
    this.banked += performance.now() - this.runningSince;
    this.paused = true;
  }

  resume(): void {
    if (this.recorder?.state !== 'paused') return;
    this.recorder.resume();
    this.runningSince = performance.now();
    this.paused = false;
  }

  stop(): Promise<RecordedAudio> {
    if (this.stopped) return this.stopped;
    const recorder = this.recorder;
    const durationMs = this.elapsed();
    this.stopped = new Promise<RecordedAudio>((resolve) => {
      const done = () => {
        const blob = new Blob(this.chunks, { type: recorder?.mimeType || 'audio/webm' });
        this.release();
        resolve({ blob, durationMs, notice: this.notice });
      };
      if (!recorder || recorder.state === 'inactive') done();
      else {
        recorder.onstop = done;
        recorder.stop();
      }
    });
    return this.stopped;
  }

  cancel(): void {
    if (this.recorder && this.recorder.state !== 'inactive') {
      this.recorder.onstop = null;
      this.recorder.stop();
    }
    this.release();
  }

  discard(): void {
    this.chunks = [];
  }

  private release(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    cancelAnimationFrame(this.raf);
    void this.audioCtx?.close().catch(() => {});
    this.audioCtx = null;
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
  }
}

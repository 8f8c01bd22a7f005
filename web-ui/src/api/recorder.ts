//! The voice recorder behind the seam: the component shows a timer, a level meter,
//! pause/resume, cancel, a preview and the upload; where the audio comes from is this
//! interface's business (MediaRecorder in a browser, the native recorder in the desktop app).

export type RecorderUpdate =
  | { kind: 'level'; level: number; elapsedMs: number }
  /** The recording ended by itself (size limit, lost device); `stop()` gives what was kept. */
  | { kind: 'ended'; message: string; elapsedMs: number };

export interface RecordedAudio {
  blob: Blob;
  durationMs: number;
  /** Why it ended by itself, to show the person (or null). */
  notice: string | null;
}

export interface VoiceRecorder {
  /** Opens the input and starts recording. Throws an Error whose message is for people. */
  start(onUpdate: (u: RecorderUpdate) => void): Promise<void>;
  pause(): void;
  resume(): void;
  /** Ends the recording and hands over the audio. */
  stop(): Promise<RecordedAudio>;
  /** Ends it and throws the audio away. */
  cancel(): void;
  /** The audio will not be sent (after a discard): free what it holds. */
  discard(audio: RecordedAudio): void;
}

export type RecorderFactory = () => VoiceRecorder;

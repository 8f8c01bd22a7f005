//! What a voice file really is, decided by its bytes: the container from its magic
//! numbers, then a real parse of the whole file with symphonia. The duration is measured
//! from the audio; the waveform (peaks) comes from decoding it. Opus has no decoder
//! here: its duration comes from the container's timestamps and its waveform is left
//! empty rather than invented.

use std::{fs::File, path::Path};

use symphonia::core::{
    audio::SampleBuffer,
    codecs::{
        CODEC_TYPE_AAC, CODEC_TYPE_MP3, CODEC_TYPE_NULL, CODEC_TYPE_OPUS, CODEC_TYPE_VORBIS,
        CodecType, DecoderOptions,
    },
    errors::Error as SymphoniaError,
    formats::FormatOptions,
    io::{MediaSourceStream, MediaSourceStreamOptions},
    meta::MetadataOptions,
    probe::Hint,
};

/// Number of peaks in a waveform preview.
pub const WAVEFORM_POINTS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Wav,
    Mp3,
    Ogg,
    Mp4,
    WebM,
}

/// The container, from the first bytes of the file.
pub fn sniff(head: &[u8]) -> Option<Container> {
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        return Some(Container::Wav);
    }
    if head.starts_with(b"OggS") {
        return Some(Container::Ogg);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Some(Container::Mp4);
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // EBML; the doctype must say webm.
        let window = &head[..head.len().min(64)];
        if window.windows(4).any(|w| w == b"webm") {
            return Some(Container::WebM);
        }
        return None;
    }
    if head.starts_with(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        return Some(Container::Mp3);
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    pub mime: &'static str,
    pub duration_ms: i64,
    /// `WAVEFORM_POINTS` peaks 0–255, or empty when the codec cannot be decoded here.
    pub waveform: Vec<u8>,
}

/// Parses the whole file at `path` as `container`. `Err` when it is not playable audio.
pub fn analyse(path: &Path, container: Container) -> Result<AudioInfo, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let stream = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    hint.with_extension(match container {
        Container::Wav => "wav",
        Container::Mp3 => "mp3",
        Container::Ogg => "ogg",
        Container::Mp4 => "m4a",
        Container::WebM => "webm",
    });
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| format!("not a readable audio file: {e}"))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or("no audio track")?
        .clone();
    let codec = track.codec_params.codec;
    let mime = mime_for(container, codec).ok_or("unsupported codec in this container")?;
    let sample_rate = track.codec_params.sample_rate.ok_or("no sample rate")?;
    let time_base = track.codec_params.time_base;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .ok();
    if decoder.is_none() && codec != CODEC_TYPE_OPUS {
        return Err("cannot decode this audio".into());
    }

    let mut frames: u64 = 0;
    let mut end_ts: u64 = 0;
    let mut packets = 0u64;
    // Peak per window of ~10 ms, reduced to WAVEFORM_POINTS at the end.
    let window = u64::from(sample_rate / 100).max(1);
    let mut peaks: Vec<f32> = Vec::new();
    let mut current_peak = 0f32;
    let mut in_window = 0u64;
    let mut samples: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(format!("damaged audio: {e}")),
        };
        if packet.track_id() != track.id {
            continue;
        }
        packets += 1;
        end_ts = end_ts.max(packet.ts + packet.dur);
        let Some(decoder) = decoder.as_mut() else {
            continue;
        };
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(format!("damaged audio: {e}")),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let buf = samples.get_or_insert_with(|| SampleBuffer::new(decoded.capacity() as u64, spec));
        if buf.capacity() < decoded.capacity() * channels {
            *buf = SampleBuffer::new(decoded.capacity() as u64, spec);
        }
        buf.copy_interleaved_ref(decoded);
        for frame in buf.samples().chunks(channels) {
            let peak = frame.iter().fold(0f32, |m, s| m.max(s.abs()));
            current_peak = current_peak.max(peak);
            in_window += 1;
            if in_window == window {
                peaks.push(current_peak);
                current_peak = 0.0;
                in_window = 0;
            }
        }
        frames += (buf.samples().len() / channels) as u64;
    }
    if in_window > 0 {
        peaks.push(current_peak);
    }
    if packets == 0 {
        return Err("no audio in the file".into());
    }
    let duration_ms = if decoder.is_some() && frames > 0 {
        i64::try_from(frames * 1000 / u64::from(sample_rate)).unwrap_or(i64::MAX)
    } else {
        let tb = time_base.ok_or("no time base")?;
        let t = tb.calc_time(end_ts);
        i64::try_from(t.seconds * 1000).unwrap_or(i64::MAX) + (t.frac * 1000.0) as i64
    };
    if duration_ms <= 0 {
        return Err("the audio is empty".into());
    }
    Ok(AudioInfo {
        mime,
        duration_ms,
        waveform: if decoder.is_some() {
            reduce(&peaks)
        } else {
            Vec::new()
        },
    })
}

fn mime_for(container: Container, codec: CodecType) -> Option<&'static str> {
    match (container, codec) {
        (Container::Wav, _) => Some("audio/wav"),
        (Container::Mp3, CODEC_TYPE_MP3) => Some("audio/mpeg"),
        (Container::Ogg, CODEC_TYPE_VORBIS | CODEC_TYPE_OPUS) => Some("audio/ogg"),
        (Container::Mp4, CODEC_TYPE_AAC) => Some("audio/mp4"),
        (Container::WebM, CODEC_TYPE_OPUS | CODEC_TYPE_VORBIS) => Some("audio/webm"),
        _ => None,
    }
}

/// `WAVEFORM_POINTS` peaks (0–255) from the per-window peaks, scaled to the loudest.
fn reduce(peaks: &[f32]) -> Vec<u8> {
    if peaks.is_empty() {
        return Vec::new();
    }
    let loudest = peaks.iter().fold(0f32, |m, p| m.max(*p)).max(1e-6);
    (0..WAVEFORM_POINTS)
        .map(|i| {
            let start = i * peaks.len() / WAVEFORM_POINTS;
            let end = ((i + 1) * peaks.len() / WAVEFORM_POINTS)
                .max(start + 1)
                .min(peaks.len());
            let peak = peaks[start.min(peaks.len() - 1)..end]
                .iter()
                .fold(0f32, |m, p| m.max(*p));
            (peak / loudest * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_containers_by_magic_numbers() {
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Some(Container::Wav));
        assert_eq!(sniff(b"OggS\0\x02"), Some(Container::Ogg));
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), Some(Container::Mp4));
        assert_eq!(sniff(b"ID3\x04\0"), Some(Container::Mp3));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(sniff(b"hello world"), None);
    }

    #[test]
    fn waveform_has_fixed_points_scaled_to_the_loudest() {
        let w = reduce(&(0..1000).map(|i| i as f32 / 1000.0).collect::<Vec<_>>());
        assert_eq!(w.len(), WAVEFORM_POINTS);
        assert_eq!(w[WAVEFORM_POINTS - 1], 255);
        assert!(w.windows(2).all(|p| p[0] <= p[1]));
        assert_eq!(reduce(&[0.5; 3]).len(), WAVEFORM_POINTS);
    }
}

//! What a voice file really is, decided by its bytes: the container from its magic
//! numbers, then a real parse of the whole file with symphonia (Opus decoded by libopus
//! through `symphonia-adapter-libopus`). The duration is measured from the decoded audio
//! (gapless: encoder delay and padding trimmed) and the waveform (peaks) comes from the
//! same samples, which [`transcode`] also encodes, as they come, into the Ogg Opus file
//! that is stored ([`super::opus`]).
//!
//! Hostile files are refused before they cost much: a WAV's format chunk is checked
//! before symphonia sees the file (symphonia 0.5 panics on a sample rate of 0 and
//! divides by the block size), every container's sample rate and channel count are
//! checked before decoding, timestamps are added with saturation, the waveform is kept
//! in a fixed amount of memory, and decoding stops at [`MAX_DURATION_MS`].

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::Path,
    sync::LazyLock,
};

use symphonia::core::{
    audio::SampleBuffer,
    codecs::{
        CODEC_TYPE_AAC, CODEC_TYPE_MP3, CODEC_TYPE_NULL, CODEC_TYPE_OPUS, CODEC_TYPE_VORBIS,
        CodecRegistry, CodecType, DecoderOptions,
    },
    errors::Error as SymphoniaError,
    formats::{FormatOptions, FormatReader, Track},
    io::{MediaSourceStream, MediaSourceStreamOptions},
    meta::MetadataOptions,
    probe::Hint,
};

use super::opus::{EncodeError, OpusFile};

/// symphonia's decoders and libopus for Opus (symphonia 0.5 has no Opus decoder).
static CODECS: LazyLock<CodecRegistry> = LazyLock::new(|| {
    let mut codecs = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut codecs);
    codecs.register_all::<symphonia_adapter_libopus::OpusDecoder>();
    codecs
});

/// Number of peaks in a waveform preview.
pub const WAVEFORM_POINTS: usize = 64;
/// Sample rates accepted (Hz): telephone quality to studio.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;
/// Most channels accepted (7.1).
pub const MAX_CHANNELS: usize = 8;
/// Longest voice message: 6 hours, more than 16 MB hold at any usable bitrate.
pub const MAX_DURATION_MS: u64 = 6 * 60 * 60 * 1000;
/// Most frames in one decoded packet (codecs use 1152 at most for what we accept).
const MAX_PACKET_FRAMES: usize = 1 << 16;
/// Peaks kept while decoding, however long the audio: when full, neighbours merge.
const MAX_PEAKS: usize = 4096;

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
    /// The file's type: the upload's, or [`super::opus::MIME`] for what [`transcode`] wrote.
    pub mime: &'static str,
    pub duration_ms: i64,
    /// `WAVEFORM_POINTS` peaks 0–255.
    pub waveform: Vec<u8>,
}

/// Why a file is not accepted as a voice message. The messages are shown to the
/// sender (after "not playable audio: ").
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The container's layout, checked before symphonia reads it, is refused.
    #[error("{0}")]
    Layout(&'static str),
    #[error("WAV format {0:#06x} (accepted: PCM, float, A-law, µ-law)")]
    WavFormat(u16),
    #[error("{0} bits per sample")]
    BitsPerSample(u16),
    #[error("a block size of {block_align} bytes for {channels} channels of {bits} bits")]
    BlockSize {
        block_align: u16,
        channels: u16,
        bits: u16,
    },
    #[error("a WebM timestamp scale of {0}")]
    WebmTimestampScale(u64),
    #[error("not a readable audio file: {0}")]
    Unreadable(SymphoniaError),
    #[error("no audio track")]
    NoTrack,
    #[error("unsupported codec in this container")]
    UnsupportedCodec,
    #[error("no sample rate")]
    NoSampleRate,
    #[error(
        "a sample rate of {0} Hz (accepted: {min} to {max} Hz)",
        min = SAMPLE_RATES.start(),
        max = SAMPLE_RATES.end()
    )]
    SampleRate(u32),
    #[error("{0} channels (accepted: 1 to {MAX_CHANNELS})")]
    Channels(usize),
    /// No decoder for the codec.
    #[error("cannot decode this audio")]
    NoDecoder,
    #[error("damaged audio: {0}")]
    Damaged(SymphoniaError),
    #[error("audio packets too large")]
    PacketTooLarge,
    #[error("no audio in the file")]
    NoPackets,
    #[error("the audio is empty")]
    Empty,
    /// Past [`MAX_DURATION_MS`].
    #[error("longer than 6 hours")]
    TooLong,
    /// Writing the Ogg Opus copy failed (the upload is not at fault, but is not kept).
    #[error("re-encoding failed: {0}")]
    Encode(#[from] EncodeError),
}

/// Parses the whole file at `path` as `container`: [`probe`], then [`decode`]. `Err`
/// when it is not playable audio or its parameters are out of bounds.
pub fn analyse(path: &Path, container: Container) -> Result<AudioInfo, AudioError> {
    decode(probe(path, container)?, None)
}

/// [`analyse`], encoding the decoded audio into an Ogg Opus file at `out` as it goes:
/// the info is the new file's (its type, the duration and waveform measured from the
/// source's samples).
pub fn transcode(path: &Path, container: Container, out: &Path) -> Result<AudioInfo, AudioError> {
    decode(probe(path, container)?, Some(out))
}

/// A container opened, its audio track found and its parameters checked: ready to
/// decode.
struct Probed {
    format: Box<dyn FormatReader>,
    track: Track,
    mime: &'static str,
    sample_rate: u32,
}

/// Opens the file at `path` as `container`: the container's layout checked (for the
/// formats symphonia cannot be trusted with), the file probed, the first audio track
/// found, its codec matched to the container and its sample rate and channel count
/// checked.
fn probe(path: &Path, container: Container) -> Result<Probed, AudioError> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    match container {
        Container::Wav => check_wav(&mut file)?,
        Container::Mp4 => check_mp4(&mut file, len)?,
        Container::WebM => check_webm(&mut file, len)?,
        Container::Mp3 | Container::Ogg => {}
    }
    file.rewind()?;
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
            &FormatOptions {
                enable_gapless: true,
                ..FormatOptions::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(AudioError::Unreadable)?;
    let format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or(AudioError::NoTrack)?
        .clone();
    let mime = mime_for(container, track.codec_params.codec).ok_or(AudioError::UnsupportedCodec)?;
    let sample_rate = track
        .codec_params
        .sample_rate
        .ok_or(AudioError::NoSampleRate)?;
    check_sample_rate(sample_rate)?;
    if let Some(channels) = track.codec_params.channels {
        check_channels(channels.count())?;
    }
    if track.codec_params.codec == CODEC_TYPE_OPUS {
        check_opus_head(track.codec_params.extra_data.as_deref().unwrap_or_default())?;
    }
    Ok(Probed {
        format,
        track,
        mime,
        sample_rate,
    })
}

/// Reads and decodes every packet of the probed track: the duration from the decoded
/// frames and the waveform from the decoded samples, which go into an Ogg Opus file at
/// `out` when given. Stops past [`MAX_DURATION_MS`].
fn decode(probed: Probed, out: Option<&Path>) -> Result<AudioInfo, AudioError> {
    let Probed {
        mut format,
        track,
        mime,
        sample_rate,
    } = probed;
    let mut decoder = CODECS
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|_| AudioError::NoDecoder)?;
    let mut opus: Option<OpusFile> = None;
    let mut mono = Vec::new();
    // Frames are counted at the decoder's rate (the container's, unless it said wrong).
    let mut rate = sample_rate;

    let max_frames = MAX_DURATION_MS.saturating_mul(u64::from(sample_rate)) / 1000;
    let mut frames: u64 = 0;
    let mut packets = 0u64;
    // Peak per window of ~10 ms at first; windows widen as needed to stay within MAX_PEAKS.
    let mut peaks = Peaks::new(u64::from(sample_rate / 100).max(1));
    let mut samples: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(AudioError::Damaged(e)),
        };
        if packet.track_id() != track.id {
            continue;
        }
        packets += 1;
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(AudioError::Damaged(e)),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count();
        check_channels(channels)?;
        if decoded.capacity() > MAX_PACKET_FRAMES {
            return Err(AudioError::PacketTooLarge);
        }
        let buf = samples.get_or_insert_with(|| SampleBuffer::new(decoded.capacity() as u64, spec));
        if buf.capacity() < decoded.capacity() * channels {
            *buf = SampleBuffer::new(decoded.capacity() as u64, spec);
        }
        buf.copy_interleaved_ref(decoded);
        for frame in buf.samples().chunks(channels) {
            peaks.add(frame.iter().fold(0f32, |m, s| m.max(s.abs())));
        }
        if packets == 1 || frames == 0 {
            check_sample_rate(spec.rate)?;
            rate = spec.rate;
        }
        if let Some(path) = out {
            if opus.is_none() {
                opus = Some(OpusFile::create(path, spec.rate)?);
            }
            if let Some(opus) = opus.as_mut() {
                opus.push_interleaved(buf.samples(), channels, &mut mono)?;
            }
        }
        frames = frames.saturating_add((buf.samples().len() / channels) as u64);
        if frames > max_frames {
            return Err(AudioError::TooLong);
        }
    }
    if packets == 0 {
        return Err(AudioError::NoPackets);
    }
    let duration_ms = frames.saturating_mul(1000) / u64::from(rate);
    if duration_ms == 0 {
        return Err(AudioError::Empty);
    }
    if duration_ms > MAX_DURATION_MS {
        return Err(AudioError::TooLong);
    }
    let mime = match opus {
        Some(opus) => {
            opus.finish()?;
            super::opus::MIME
        }
        None => mime,
    };
    Ok(AudioInfo {
        mime,
        duration_ms: i64::try_from(duration_ms).map_err(|_| AudioError::TooLong)?,
        waveform: reduce(&peaks.finish()),
    })
}

fn check_sample_rate(rate: u32) -> Result<(), AudioError> {
    if SAMPLE_RATES.contains(&rate) {
        Ok(())
    } else {
        Err(AudioError::SampleRate(rate))
    }
}

fn check_channels(count: usize) -> Result<(), AudioError> {
    if (1..=MAX_CHANNELS).contains(&count) {
        Ok(())
    } else {
        Err(AudioError::Channels(count))
    }
}

/// Checks an Opus stream's identification header (`OpusHead`, RFC 7845 §5.1, the same
/// in Ogg and as WebM's codec private data) before libopus is set up from it: a version
/// this decoder knows (major 0) and one or two channels in mapping family 0 (what voice
/// recorders write; the decoder takes no more).
fn check_opus_head(head: &[u8]) -> Result<(), AudioError> {
    if head.len() < 19 || !head.starts_with(b"OpusHead") {
        return Err(AudioError::Layout("no Opus identification header"));
    }
    if head[8] >> 4 != 0 {
        return Err(AudioError::Layout("an Opus header of an unknown version"));
    }
    match (head[18], head[9]) {
        (0, 1 | 2) => Ok(()),
        (0, channels) => Err(AudioError::Channels(usize::from(channels))),
        _ => Err(AudioError::Layout(
            "Opus channel mappings beyond mono and stereo",
        )),
    }
}

/// Checks a WAV file's format chunks before any decoder sees them: PCM, IEEE float,
/// A-law or µ-law, a sane sample rate and channel count, and a block size that matches
/// them. Every format chunk before the audio data is checked, so a second one cannot
/// smuggle in what the first did not say.
fn check_wav<R: Read + Seek>(file: &mut R) -> Result<(), AudioError> {
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff)
        .map_err(|_| AudioError::Layout("truncated WAV header"))?;
    let mut formats = 0;
    for _ in 0..64 {
        let mut header = [0u8; 8];
        file.read_exact(&mut header)
            .map_err(|_| AudioError::Layout("no audio data in the WAV file"))?;
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut skip = i64::from(size) + i64::from(size & 1); // chunks are padded to even sizes
        match &header[..4] {
            b"data" if formats > 0 => return Ok(()),
            b"data" => return Err(AudioError::Layout("no format chunk before the audio data")),
            b"fmt " => {
                let mut fmt = [0u8; 40];
                let len = usize::try_from(size).unwrap_or(usize::MAX).min(fmt.len());
                file.read_exact(&mut fmt[..len])
                    .map_err(|_| AudioError::Layout("truncated WAV format chunk"))?;
                check_wav_format(&fmt[..len])?;
                formats += 1;
                skip -= i64::try_from(len).unwrap_or(0);
            }
            _ => {}
        }
        file.seek(SeekFrom::Current(skip))?;
    }
    Err(AudioError::Layout(
        "too many chunks before the WAV audio data",
    ))
}

/// One WAV format chunk (`WAVEFORMATEX`, possibly extensible).
fn check_wav_format(fmt: &[u8]) -> Result<(), AudioError> {
    const PCM: u16 = 1;
    const FLOAT: u16 = 3;
    const ALAW: u16 = 6;
    const MULAW: u16 = 7;
    const EXTENSIBLE: u16 = 0xFFFE;
    if fmt.len() < 16 {
        return Err(AudioError::Layout("the WAV format chunk is too short"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let channels = u16_at(2);
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    let block_align = u16_at(12);
    let bits = u16_at(14);
    let tag = match u16_at(0) {
        // The sub-format GUID starts with the format tag it stands for.
        EXTENSIBLE if fmt.len() >= 40 => u16_at(24),
        EXTENSIBLE => {
            return Err(AudioError::Layout(
                "the WAV extensible format chunk is too short",
            ));
        }
        tag => tag,
    };
    let bits_ok = match tag {
        PCM => matches!(bits, 8 | 16 | 24 | 32),
        FLOAT => matches!(bits, 32 | 64),
        ALAW | MULAW => bits == 8,
        other => return Err(AudioError::WavFormat(other)),
    };
    if !bits_ok {
        return Err(AudioError::BitsPerSample(bits));
    }
    check_sample_rate(rate)?;
    check_channels(usize::from(channels))?;
    if u32::from(block_align) != u32::from(channels) * u32::from(bits / 8) {
        return Err(AudioError::BlockSize {
            block_align,
            channels,
            bits,
        });
    }
    Ok(())
}

/// Checks an MP4 file's time scales (movie and every track) before symphonia builds
/// time bases from them: symphonia 0.5 panics on a time scale of 0.
fn check_mp4<R: Read + Seek>(file: &mut R, len: u64) -> Result<(), AudioError> {
    let mut budget = 4096; // boxes read at most
    check_mp4_boxes(file, 0, len, &mut budget)
}

fn check_mp4_boxes<R: Read + Seek>(
    file: &mut R,
    start: u64,
    end: u64,
    budget: &mut u32,
) -> Result<(), AudioError> {
    let truncated = |_| AudioError::Layout("truncated MP4 box");
    let mut pos = start;
    while pos.saturating_add(8) <= end {
        *budget = budget
            .checked_sub(1)
            .ok_or(AudioError::Layout("too many MP4 boxes"))?;
        file.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 8];
        file.read_exact(&mut header).map_err(truncated)?;
        let kind = [header[4], header[5], header[6], header[7]];
        let (size, header_len) =
            match u32::from_be_bytes([header[0], header[1], header[2], header[3]]) {
                0 => (end - pos, 8),
                1 => {
                    let mut large = [0u8; 8];
                    file.read_exact(&mut large).map_err(truncated)?;
                    (u64::from_be_bytes(large), 16)
                }
                size => (u64::from(size), 8),
            };
        let box_end = pos
            .checked_add(size)
            .ok_or(AudioError::Layout("MP4 box too large"))?;
        if size < header_len || box_end > end {
            return Err(AudioError::Layout("damaged MP4 box sizes"));
        }
        match &kind {
            b"moov" | b"trak" | b"mdia" => {
                check_mp4_boxes(file, pos + header_len, box_end, budget)?;
            }
            b"mvhd" | b"mdhd" => {
                let mut body = [0u8; 24];
                let n = usize::try_from(size - header_len)
                    .unwrap_or(body.len())
                    .min(body.len());
                file.read_exact(&mut body[..n]).map_err(truncated)?;
                // Version 1 has 64-bit dates before the time scale, version 0 32-bit ones.
                let at = if body[0] == 1 { 20 } else { 12 };
                let scale = body
                    .get(at..at + 4)
                    .filter(|_| n >= at + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or(AudioError::Layout("truncated MP4 header"))?;
                if scale == 0 {
                    return Err(AudioError::Layout("an MP4 time scale of 0"));
                }
            }
            _ => {}
        }
        pos = box_end;
    }
    Ok(())
}

/// Checks a WebM file's layout before symphonia reads it: every element of known size
/// ends within the file (symphonia 0.5 panics on some truncated ones) and the
/// `TimestampScale` fits a time base (it panics on 0 and on values over `u32::MAX`).
fn check_webm<R: Read + Seek>(file: &mut R, len: u64) -> Result<(), AudioError> {
    const SEGMENT: u32 = 0x1853_8067;
    const INFO: u32 = 0x1549_A966;
    const CLUSTER: u32 = 0x1F43_B675;
    const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    // The ends of the elements being walked, innermost last.
    let mut stack: Vec<u64> = vec![len];
    let mut pos = 0u64;
    for _ in 0..100_000 {
        while stack.last().is_some_and(|end| pos >= *end) {
            stack.pop();
        }
        let Some(&parent_end) = stack.last() else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(pos))?;
        let Some((id, id_len)) = ebml_varint(file, false)? else {
            return Err(AudioError::Layout("truncated WebM element"));
        };
        let Some((size, size_len)) = ebml_varint(file, true)? else {
            return Err(AudioError::Layout("truncated WebM element"));
        };
        let data = pos + id_len + size_len;
        let end = match size {
            Some(size) => data
                .checked_add(size)
                .ok_or(AudioError::Layout("WebM element too large"))?,
            None => parent_end, // unknown size: it runs to the end of its parent
        };
        if end > parent_end {
            return Err(AudioError::Layout("truncated WebM file"));
        }
        match id.and_then(|id| u32::try_from(id).ok()).unwrap_or(0) {
            SEGMENT | INFO | CLUSTER => {
                stack.push(end);
                pos = data;
            }
            TIMESTAMP_SCALE => {
                let size = end - data;
                if size > 8 {
                    return Err(AudioError::Layout("damaged WebM timestamp scale"));
                }
                let mut value = [0u8; 8];
                let at = usize::try_from(8 - size).unwrap_or(0);
                file.read_exact(&mut value[at..])
                    .map_err(|_| AudioError::Layout("truncated WebM file"))?;
                let scale = u64::from_be_bytes(value);
                if scale == 0 || scale > u64::from(u32::MAX) {
                    return Err(AudioError::WebmTimestampScale(scale));
                }
                pos = end;
            }
            _ => pos = end,
        }
    }
    Err(AudioError::Layout("too many WebM elements"))
}

/// One EBML variable-length integer: its value and length; for sizes, `None` as the value
/// means "unknown". `Ok(None)` at the end of the file.
fn ebml_varint<R: Read>(
    file: &mut R,
    is_size: bool,
) -> Result<Option<(Option<u64>, u64)>, AudioError> {
    let mut first = [0u8; 1];
    if file.read(&mut first)? == 0 {
        return Ok(None);
    }
    let len = first[0].leading_zeros() + 1;
    if len > 8 || (!is_size && len > 4) {
        return Err(AudioError::Layout("damaged WebM element"));
    }
    let mut rest = [0u8; 7];
    let rest = &mut rest[..usize::try_from(len - 1).unwrap_or(0)];
    if file.read_exact(rest).is_err() {
        return Ok(None);
    }
    // IDs keep their length marker; sizes drop it.
    let marker_kept = if is_size {
        u64::from(first[0]) & (0xFF >> len)
    } else {
        u64::from(first[0])
    };
    let value = rest
        .iter()
        .fold(marker_kept, |v, b| (v << 8) | u64::from(*b));
    let all_ones = (1u64 << (7 * len)) - 1;
    let value = if is_size && value == all_ones {
        None
    } else {
        Some(value)
    };
    Ok(Some((value, u64::from(len))))
}

/// The loudest sample per window of frames, in at most [`MAX_PEAKS`] values: when the
/// list is full, neighbours merge and windows double.
struct Peaks {
    window: u64,
    peaks: Vec<f32>,
    current: f32,
    in_window: u64,
}

impl Peaks {
    fn new(window: u64) -> Self {
        Self {
            window,
            peaks: Vec::with_capacity(MAX_PEAKS),
            current: 0.0,
            in_window: 0,
        }
    }

    fn add(&mut self, peak: f32) {
        self.current = self.current.max(peak);
        self.in_window += 1;
        if self.in_window < self.window {
            return;
        }
        if self.peaks.len() == MAX_PEAKS {
            self.peaks = self
                .peaks
                .chunks(2)
                .map(|pair| pair.iter().fold(0f32, |m, p| m.max(*p)))
                .collect();
            self.window = self.window.saturating_mul(2);
        }
        self.peaks.push(self.current);
        self.current = 0.0;
        self.in_window = 0;
    }

    fn finish(mut self) -> Vec<f32> {
        if self.in_window > 0 {
            self.peaks.push(self.current);
        }
        self.peaks
    }
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
    fn peaks_stay_bounded_however_long_the_audio() {
        let mut peaks = Peaks::new(480);
        for i in 0..20_000_000u64 {
            peaks.add(if i == 19_999_999 { 1.0 } else { 0.25 });
        }
        let peaks = peaks.finish();
        assert!(peaks.len() <= MAX_PEAKS + 1, "{}", peaks.len());
        let waveform = reduce(&peaks);
        assert_eq!(waveform.len(), WAVEFORM_POINTS);
        assert_eq!(
            waveform[WAVEFORM_POINTS - 1],
            255,
            "the loudest peak survives merging"
        );
        assert_eq!(waveform[0], 64);
    }

    #[test]
    fn wav_formats_are_checked_before_decoding() {
        let wav = |tag: u16, channels: u16, rate: u32, align: u16, bits: u16| {
            let mut out = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0".to_vec();
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&channels.to_le_bytes());
            out.extend_from_slice(&rate.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&align.to_le_bytes());
            out.extend_from_slice(&bits.to_le_bytes());
            out.extend_from_slice(b"data\0\0\0\0");
            std::io::Cursor::new(out)
        };
        assert!(check_wav(&mut wav(1, 2, 44_100, 4, 16)).is_ok());
        assert!(check_wav(&mut wav(3, 1, 48_000, 4, 32)).is_ok());
        for bad in [
            wav(1, 1, 0, 2, 16),
            wav(1, 1, 1, 2, 16),
            wav(1, 0, 48_000, 0, 16),
            wav(1, 1, 48_000, 0, 16),
            wav(1, 1000, 48_000, 2000, 16),
            wav(1, 1, 48_000, 1, 12),
            wav(0x11, 2, 48_000, 1, 4),
        ] {
            assert!(check_wav(&mut bad.clone()).is_err(), "{:?}", bad.get_ref());
        }
    }

    #[test]
    fn refusals_say_what_is_out_of_bounds() {
        assert_eq!(
            AudioError::SampleRate(0).to_string(),
            "a sample rate of 0 Hz (accepted: 8000 to 192000 Hz)"
        );
        assert_eq!(
            AudioError::Channels(9).to_string(),
            "9 channels (accepted: 1 to 8)"
        );
        assert_eq!(
            AudioError::WavFormat(0x11).to_string(),
            "WAV format 0x0011 (accepted: PCM, float, A-law, µ-law)"
        );
        assert_eq!(
            AudioError::BlockSize {
                block_align: 1,
                channels: 2,
                bits: 16
            }
            .to_string(),
            "a block size of 1 bytes for 2 channels of 16 bits"
        );
        assert!(matches!(
            check_wav(&mut std::io::Cursor::new(b"RIFF")),
            Err(AudioError::Layout("truncated WAV header"))
        ));
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

//! Every voice message is stored as Ogg Opus, mono, at a bitrate made for speech: the
//! decoded audio of an upload (any accepted format) is mixed down to one channel,
//! brought to 48 kHz (rubato) when it is at another rate, encoded by libopus in 20 ms
//! frames and written as Ogg pages (RFC 7845), as it is decoded: memory stays the same
//! however long the audio.
//!
//! The stream says how much to drop at either end: `OpusHead`'s pre-skip is the
//! encoder's look-ahead (its delay), and the last page's granule position counts only
//! the real samples, so a decoder plays exactly what was recorded.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::Path,
};

use ogg::{PacketWriteEndInfo, PacketWriter};
use opus::{Application, Bitrate, Channels, Encoder, Signal};
use rubato::{Fft, FixedSync, Resampler, audioadapter_buffers::direct::InterleavedSlice};

/// What the stored files are.
pub const MIME: &str = "audio/ogg; codecs=opus";
/// Bits per second: clear speech at about 180 KB a minute (WhatsApp and Signal send
/// voice at 16–32 kbit/s).
pub const BITRATE: i32 = 24_000;
/// Opus runs at 48 kHz here; Ogg Opus granule positions always count 48 kHz samples.
const RATE: u32 = 48_000;
/// 20 ms, the frame Opus is tuned for.
const FRAME: usize = 960;
/// Input frames per resampler call, as asked of it.
const CHUNK: usize = 1024;
/// Audio packets per Ogg page (one second).
const PACKETS_PER_PAGE: u64 = 50;
/// The logical stream's serial number (one stream per file).
const SERIAL: u32 = 0x4361_7070;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("Opus encoder: {0}")]
    Opus(#[from] opus::Error),
    #[error("resampler: {0}")]
    Resample(String),
    #[error("no audio to encode")]
    Empty,
}

fn resample_error(err: impl std::fmt::Display) -> EncodeError {
    EncodeError::Resample(err.to_string())
}

/// An Ogg Opus file being written from mono samples at any rate.
pub struct OpusFile {
    to_48k: Option<To48k>,
    writer: OggOpus,
    /// Input frames taken (at the input rate).
    taken: u64,
    in_rate: u32,
}

impl OpusFile {
    /// Starts the file at `path` for mono audio at `in_rate` Hz.
    pub fn create(path: &Path, in_rate: u32) -> Result<Self, EncodeError> {
        let to_48k = (in_rate != RATE).then(|| To48k::new(in_rate)).transpose()?;
        Ok(Self {
            to_48k,
            writer: OggOpus::create(path, in_rate)?,
            taken: 0,
            in_rate,
        })
    }

    /// Mixes `interleaved` frames of `channels` channels down to one and encodes them.
    pub fn push_interleaved(
        &mut self,
        interleaved: &[f32],
        channels: usize,
        mono: &mut Vec<f32>,
    ) -> Result<(), EncodeError> {
        mono.clear();
        if channels <= 1 {
            mono.extend_from_slice(interleaved);
        } else {
            let scale = 1.0 / channels as f32;
            mono.extend(
                interleaved
                    .chunks(channels)
                    .map(|frame| frame.iter().sum::<f32>() * scale),
            );
        }
        self.push(mono)
    }

    /// Encodes mono samples at the input rate.
    pub fn push(&mut self, samples: &[f32]) -> Result<(), EncodeError> {
        self.taken += samples.len() as u64;
        match &mut self.to_48k {
            None => self.writer.push(samples),
            Some(to_48k) => to_48k.push(samples, &mut self.writer),
        }
    }

    /// Ends the stream (the resampler and the encoder drained, the last page marked) and
    /// syncs the file to disk.
    pub fn finish(mut self) -> Result<(), EncodeError> {
        if let Some(to_48k) = &mut self.to_48k {
            // Every input frame comes out as this many at 48 kHz.
            let want = (self.taken * u64::from(RATE)).div_ceil(u64::from(self.in_rate));
            to_48k.drain(want, &mut self.writer)?;
        }
        self.writer.finish()
    }
}

/// Input at another rate brought to 48 kHz, in chunks of a fixed size.
struct To48k {
    resampler: Fft<f32>,
    /// Input frames per call (the resampler's fixed input size).
    chunk: usize,
    pending: Vec<f32>,
    out: Vec<f32>,
    /// Output frames still to drop: the resampler's own delay.
    delay: usize,
}

impl To48k {
    fn new(in_rate: u32) -> Result<Self, EncodeError> {
        let resampler =
            Fft::<f32>::new(in_rate as usize, RATE as usize, CHUNK, 1, FixedSync::Input)
                .map_err(resample_error)?;
        let delay = resampler.output_delay();
        let chunk = resampler.input_frames_next();
        let out = vec![0.0; resampler.output_frames_max()];
        Ok(Self {
            resampler,
            pending: Vec::with_capacity(chunk),
            chunk,
            out,
            delay,
        })
    }

    fn push(&mut self, mut samples: &[f32], writer: &mut OggOpus) -> Result<(), EncodeError> {
        while !samples.is_empty() {
            let take = (self.chunk - self.pending.len()).min(samples.len());
            self.pending.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.pending.len() == self.chunk {
                self.chunk(writer, usize::MAX)?;
            }
        }
        Ok(())
    }

    /// Resamples the pending chunk (zero-padded), writing at most `limit` frames.
    fn chunk(&mut self, writer: &mut OggOpus, limit: usize) -> Result<usize, EncodeError> {
        self.pending.resize(self.chunk, 0.0);
        let input =
            InterleavedSlice::new(&self.pending[..], 1, self.chunk).map_err(resample_error)?;
        let frames = self.out.len();
        let mut output =
            InterleavedSlice::new_mut(&mut self.out[..], 1, frames).map_err(resample_error)?;
        let (_, made) = self
            .resampler
            .process_into_buffer(&input, &mut output, None)
            .map_err(resample_error)?;
        self.pending.clear();
        let skip = self.delay.min(made);
        self.delay -= skip;
        let keep = (made - skip).min(limit);
        writer.push(&self.out[skip..skip + keep])?;
        Ok(keep)
    }

    /// Feeds silence until `want` frames in all came out of the resampler.
    fn drain(&mut self, want: u64, writer: &mut OggOpus) -> Result<(), EncodeError> {
        while writer.fed < want {
            let limit = usize::try_from(want - writer.fed).unwrap_or(usize::MAX);
            let delay = self.delay;
            if self.chunk(writer, limit)? == 0 && self.delay == delay {
                break; // nothing more comes out
            }
        }
        Ok(())
    }
}

/// 48 kHz mono samples in, Ogg Opus pages out.
struct OggOpus {
    encoder: Encoder,
    ogg: PacketWriter<'static, BufWriter<File>>,
    pre_skip: u64,
    frame: Vec<f32>,
    packet: Vec<u8>,
    /// Real samples fed, and samples encoded (padding included).
    fed: u64,
    encoded: u64,
    /// The last packet, held back so that the stream's last one can end it.
    held: Option<(Vec<u8>, u64)>,
    packets: u64,
}

impl OggOpus {
    fn create(path: &Path, input_rate: u32) -> Result<Self, EncodeError> {
        let mut encoder = Encoder::new(RATE, Channels::Mono, Application::Voip)?;
        encoder.set_bitrate(Bitrate::Bits(BITRATE))?;
        encoder.set_signal(Signal::Voice)?;
        let pre_skip = u64::from(encoder.get_lookahead()?.unsigned_abs());
        let mut ogg = PacketWriter::new(BufWriter::new(File::create(path)?));
        // OpusHead alone on the first page, OpusTags ending the second (RFC 7845 §3).
        ogg.write_packet(
            opus_head(u16::try_from(pre_skip).unwrap_or(u16::MAX), input_rate),
            SERIAL,
            PacketWriteEndInfo::EndPage,
            0,
        )?;
        ogg.write_packet(opus_tags(), SERIAL, PacketWriteEndInfo::EndPage, 0)?;
        Ok(Self {
            encoder,
            ogg,
            pre_skip,
            frame: Vec::with_capacity(FRAME),
            packet: vec![0; 4000],
            fed: 0,
            encoded: 0,
            held: None,
            packets: 0,
        })
    }

    fn push(&mut self, samples: &[f32]) -> Result<(), EncodeError> {
        self.fed += samples.len() as u64;
        self.encode(samples)
    }

    fn encode(&mut self, mut samples: &[f32]) -> Result<(), EncodeError> {
        while !samples.is_empty() {
            let take = (FRAME - self.frame.len()).min(samples.len());
            self.frame.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.frame.len() < FRAME {
                break;
            }
            let len = self.encoder.encode_float(&self.frame, &mut self.packet)?;
            self.frame.clear();
            self.encoded += FRAME as u64;
            if let Some((packet, granule)) = self.held.take() {
                let end = if self.packets.is_multiple_of(PACKETS_PER_PAGE) {
                    PacketWriteEndInfo::EndPage
                } else {
                    PacketWriteEndInfo::NormalPacket
                };
                self.ogg.write_packet(packet, SERIAL, end, granule)?;
            }
            self.packets += 1;
            // The granule of a packet: 48 kHz samples up to its end, pre-skip included.
            self.held = Some((self.packet[..len].to_vec(), self.encoded));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), EncodeError> {
        if self.fed == 0 {
            return Err(EncodeError::Empty);
        }
        // The encoder's delay flushed out, the last frame padded with silence.
        let frame = FRAME as u64;
        let total = (self.fed + self.pre_skip).div_ceil(frame) * frame;
        let padding = total - self.encoded - self.frame.len() as u64;
        self.encode(&vec![0.0; usize::try_from(padding).unwrap_or(0)])?;
        let (packet, _) = self.held.take().ok_or(EncodeError::Empty)?;
        // End trimming: the last granule counts the real samples only.
        self.ogg.write_packet(
            packet,
            SERIAL,
            PacketWriteEndInfo::EndStream,
            self.pre_skip + self.fed,
        )?;
        let mut file = self.ogg.into_inner();
        file.flush()?;
        file.get_ref().sync_all()?;
        Ok(())
    }
}

/// `OpusHead` (RFC 7845 §5.1): version 1, one channel, the pre-skip, the input's rate
/// (for information), no gain, mapping family 0.
fn opus_head(pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 1]);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&input_rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// `OpusTags` (RFC 7845 §5.2): the encoder as vendor, no comments.
fn opus_tags() -> Vec<u8> {
    let vendor = format!("ChatApp ({})", opus::version());
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&u32::try_from(vendor.len()).unwrap_or(0).to_le_bytes());
    tags.extend_from_slice(vendor.as_bytes());
    tags.extend_from_slice(&0u32.to_le_bytes());
    tags
}

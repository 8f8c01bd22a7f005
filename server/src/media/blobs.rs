//! Where uploaded files live: the [`BlobStore`] trait (put a finished upload, read it
//! whole or a byte range, delete, list) and its one implementation today,
//! [`LocalBlobs`], a directory under the data dir. Blobs are named by random ids (never
//! by the uploader's filename). Uploads are first written to a local staging file
//! ([`Staging`], [`TempBlob`]), so a store only ever receives complete files, and a crash
//! never leaves half a file behind an id.

use std::{
    io,
    ops::Range,
    path::{Path, PathBuf},
    pin::Pin,
};

use futures_util::future::BoxFuture;
use rand::RngCore;
use tokio::{
    fs,
    io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt},
};

/// A blob's bytes being read: `len` bytes from `body`, out of `total`.
pub struct BlobRead {
    pub body: Pin<Box<dyn AsyncRead + Send>>,
    /// How many bytes `body` yields.
    pub len: u64,
    /// The whole blob's size.
    pub total: u64,
}

/// Storage for uploaded files. Implementations run the same tests
/// (`server/tests/blobs.rs`); handlers never see a path.
pub trait BlobStore: Send + Sync + 'static {
    /// Takes a finished upload in as `id`, durably.
    fn put<'a>(&'a self, temp: TempBlob, id: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// Blob `id`, whole or the byte `range` (end exclusive; within the blob).
    /// `NotFound` when there is no such blob.
    fn get<'a>(
        &'a self,
        id: &'a str,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, io::Result<BlobRead>>;
    /// The size of blob `id` (`NotFound` when absent).
    fn size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<u64>>;
    /// Removes blob `id`; absent is not an error.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// Every stored blob id.
    fn list(&self) -> BoxFuture<'_, io::Result<Vec<String>>>;
}

/// A new random blob id: 128 bits, lowercase hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` is one of ours (32 lowercase hex digits): anything else names no blob.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn bad_id() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such blob")
}

/// The local directory where uploads are written before they are stored.
#[derive(Debug, Clone)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Opens (creating) the staging directory; leftovers of interrupted uploads go.
    pub async fn open(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir).await?;
        let mut entries = fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let _ = fs::remove_file(entry.path()).await;
        }
        Ok(Self { dir })
    }

    /// A new, empty staging file.
    pub async fn create(&self) -> io::Result<TempBlob> {
        let path = self.dir.join(new_id());
        let file = fs::File::create_new(&path).await?;
        Ok(TempBlob {
            path,
            file: Some(file),
            size: 0,
        })
    }
}

/// An upload being written to a staging file; the file is removed on drop unless a
/// store took it.
pub struct TempBlob {
    /// Empty once a store took the file.
    path: PathBuf,
    file: Option<fs::File>,
    size: u64,
}

impl TempBlob {
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            file.write_all(chunk).await?;
            self.size += chunk.len() as u64;
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes and syncs what was written; the file can then be read by path.
    pub async fn finish(&mut self) -> io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        Ok(())
    }

    /// Flushes what was written and closes the file without syncing it to disk: for an
    /// upload that is read and then dropped (a voice file is re-encoded, and only the
    /// result is kept), whose sync would only make the disk write 16 MB for nothing and
    /// delay the database's commits behind it.
    pub async fn close(&mut self) -> io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
        }
        Ok(())
    }

    /// Takes the size of what was written to the file by its path (by a blocking task
    /// after [`TempBlob::finish`]), as what the store receives.
    pub async fn written_elsewhere(&mut self) -> io::Result<()> {
        self.size = fs::metadata(&self.path).await?.len();
        Ok(())
    }

    /// The staging file (for decoders that read it; after [`TempBlob::finish`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first bytes of the file (after [`TempBlob::finish`]).
    pub async fn head(&self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        let mut file = fs::File::open(&self.path).await?;
        let mut read = 0;
        while read < n {
            let got = file.read(&mut buf[read..]).await?;
            if got == 0 {
                break;
            }
            read += got;
        }
        buf.truncate(read);
        Ok(buf)
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The blob store's directory inside the data directory.
pub const BLOB_DIR: &str = "blobs";

/// Where blob `id` is kept relative to the data directory, by the server's
/// [`LocalBlobs`] at [`BLOB_DIR`] (`blobs/files/ab/ab…`); `None` for an invalid id.
pub fn relative_path(id: &str) -> Option<PathBuf> {
    valid_id(id).then(|| Path::new(BLOB_DIR).join("files").join(&id[..2]).join(id))
}

/// Blobs as files in a directory: `files/<first two hex digits>/<id>`.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Opens (creating) the store at `root`.
    pub async fn open(root: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(root.join("files")).await?;
        Ok(Self { root })
    }

    fn path(&self, id: &str) -> Option<PathBuf> {
        valid_id(id).then(|| self.root.join("files").join(&id[..2]).join(id))
    }
}

impl BlobStore for LocalBlobs {
    fn put<'a>(&'a self, mut temp: TempBlob, id: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let target = self
                .path(id)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a blob id"))?;
            temp.finish().await?;
            let dir = target
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone());
            fs::create_dir_all(&dir).await?;
            let staged = std::mem::take(&mut temp.path);
            if let Err(err) = fs::rename(&staged, &target).await {
                let _ = fs::remove_file(&staged).await;
                return Err(err);
            }
            // Make the rename itself durable.
            if let Ok(dir) = fs::File::open(&dir).await {
                let _ = dir.sync_all().await;
            }
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, io::Result<BlobRead>> {
        Box::pin(async move {
            let path = self.path(id).ok_or_else(bad_id)?;
            let mut file = fs::File::open(&path).await?;
            let total = file.metadata().await?.len();
            let range = range.unwrap_or(0..total);
            if range.start > range.end || range.end > total {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "range outside the blob",
                ));
            }
            file.seek(io::SeekFrom::Start(range.start)).await?;
            let len = range.end - range.start;
            Ok(BlobRead {
                body: Box::pin(file.take(len)),
                len,
                total,
            })
        })
    }

    fn size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<u64>> {
        Box::pin(async move {
            let path = self.path(id).ok_or_else(bad_id)?;
            Ok(fs::metadata(&path).await?.len())
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            match self.path(id) {
                Some(path) => match fs::remove_file(path).await {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
                    _ => Ok(()),
                },
                None => Ok(()),
            }
        })
    }

    fn list(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        Box::pin(async move {
            let mut ids = Vec::new();
            let mut shards = fs::read_dir(self.root.join("files")).await?;
            while let Some(shard) = shards.next_entry().await? {
                if !shard.file_type().await?.is_dir() {
                    continue;
                }
                let mut files = fs::read_dir(shard.path()).await?;
                while let Some(file) = files.next_entry().await? {
                    if let Some(name) = file.file_name().to_str() {
                        ids.push(name.to_owned());
                    }
                }
            }
            Ok(ids)
        })
    }
}

//! The blob store: uploaded files in a directory under the data dir, named by random ids
//! (never by the uploader's filename). Writes go to `tmp/` first and are renamed into
//! place once complete and synced, so a crash never leaves a half file behind an id.

use std::{
    io,
    path::{Path, PathBuf},
};

use rand::RngCore;
use tokio::{fs, io::AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// A file being written; removed on drop unless persisted.
pub struct TempBlob {
    pub path: PathBuf,
    file: Option<fs::File>,
    pub size: u64,
    persisted: bool,
}

impl BlobStore {
    /// Opens (creating) the store at `root`; leftovers of interrupted writes are removed.
    pub async fn open(root: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(root.join("tmp")).await?;
        fs::create_dir_all(root.join("files")).await?;
        let mut tmp = fs::read_dir(root.join("tmp")).await?;
        while let Some(entry) = tmp.next_entry().await? {
            let _ = fs::remove_file(entry.path()).await;
        }
        Ok(Self { root })
    }

    /// A new random id: 128 bits, hex.
    pub fn new_id() -> String {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Where the blob `id` lives. Ids are our own hex strings; anything else is refused.
    pub fn path(&self, id: &str) -> Option<PathBuf> {
        let valid = id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        valid.then(|| self.root.join("files").join(&id[..2]).join(id))
    }

    pub async fn create_temp(&self) -> io::Result<TempBlob> {
        let path = self.root.join("tmp").join(Self::new_id());
        let file = fs::File::create_new(&path).await?;
        Ok(TempBlob {
            path,
            file: Some(file),
            size: 0,
            persisted: false,
        })
    }

    /// Syncs `temp` and moves it into place as `id`.
    pub async fn persist(&self, mut temp: TempBlob, id: &str) -> io::Result<PathBuf> {
        let target = self
            .path(id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad blob id"))?;
        if let Some(mut file) = temp.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        let dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        fs::create_dir_all(&dir).await?;
        fs::rename(&temp.path, &target).await?;
        temp.persisted = true;
        // Make the rename itself durable.
        if let Ok(dir) = fs::File::open(&dir).await {
            let _ = dir.sync_all().await;
        }
        Ok(target)
    }

    pub async fn delete(&self, id: &str) -> io::Result<()> {
        match self.path(id) {
            Some(path) => match fs::remove_file(path).await {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Every stored blob id.
    pub async fn ids(&self) -> io::Result<Vec<String>> {
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
    }
}

impl TempBlob {
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            file.write_all(chunk).await?;
            self.size += chunk.len() as u64;
        }
        Ok(())
    }

    pub async fn finish_writing(&mut self) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            file.flush().await?;
        }
        Ok(())
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

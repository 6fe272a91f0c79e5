//! What a node keeps of paid files across restarts (`channels.redb`): the prices it sells
//! content at, the channels it is paid through (with the buyer's latest payment, to close
//! them), and the channels it pays through (to go on paying into the same escrow).

use std::path::{Path, PathBuf};

use peerchain_primitives::encode::{Reader, put_bytes};
use peerchain_primitives::{ContentId, Decode, DecodeError, Encode, OutPoint, PublicKey, Transaction};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::IndexError;

const SALES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("sales_v1");
const SELLING: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("channels_selling_v1");
const BUYING: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("channels_buying_v1");
/// The longest peer id kept (libp2p's are 38 bytes or so).
const MAX_PEER_BYTES: usize = 128;
/// The largest payment kept.
const MAX_PAYMENT_BYTES: usize = 4096;

/// A price set on content: what the whole costs, paid into channels to `seller`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sale {
    /// Base units of the coin.
    pub price: u64,
    /// The wallet key buyers' channels pay.
    pub seller: PublicKey,
}

/// A channel this node is paid through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selling {
    /// The escrow.
    pub escrow: OutPoint,
    /// What it pays for.
    pub content: ContentId,
    /// The buyer's peer id, as bytes.
    pub buyer: Vec<u8>,
    /// What the latest payment pays.
    pub paid: u64,
    /// The latest payment, signed by the buyer.
    pub payment: Transaction,
}

/// A channel this node pays through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buying {
    /// What it pays for.
    pub content: ContentId,
    /// The escrow.
    pub escrow: OutPoint,
    /// The seller's peer id, as bytes.
    pub seller: Vec<u8>,
    /// The price agreed: what the whole costs.
    pub price: u64,
    /// What the latest payment pays.
    pub paid: u64,
}

/// The store.
pub struct Channels {
    path: PathBuf,
    db: redb::Database,
}

fn outpoint_key(escrow: &OutPoint) -> [u8; 36] {
    escrow.to_bytes().try_into().expect("an outpoint is 36 bytes")
}

impl Channels {
    /// The store's file in a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("channels.redb")
    }

    /// Opens (or creates) the store.
    pub fn open(path: &Path) -> Result<Channels, IndexError> {
        let error = |e: &dyn std::fmt::Display| IndexError::Store { path: path.to_owned(), detail: e.to_string() };
        let db = redb::Database::create(path).map_err(|e| error(&e))?;
        let channels = Channels { path: path.to_owned(), db };
        let write = channels.db.begin_write().map_err(|e| channels.error(e))?;
        write.open_table(SALES).map_err(|e| channels.error(e))?;
        write.open_table(SELLING).map_err(|e| channels.error(e))?;
        write.open_table(BUYING).map_err(|e| channels.error(e))?;
        write.commit().map_err(|e| channels.error(e))?;
        Ok(channels)
    }

    fn error(&self, e: impl std::fmt::Display) -> IndexError {
        IndexError::Store { path: self.path.clone(), detail: e.to_string() }
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> IndexError {
        IndexError::Corrupt { path: self.path.clone(), detail: e.to_string() }
    }

    /// Sets (`Some`) or ends (`None`) the sale of `content`.
    pub fn set_sale(&self, content: ContentId, sale: Option<Sale>) -> Result<(), IndexError> {
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut table = write.open_table(SALES).map_err(|e| self.error(e))?;
            match sale {
                Some(sale) => {
                    let mut value = sale.price.to_bytes();
                    sale.seller.encode_to(&mut value);
                    table.insert(&content.0, &value[..]).map_err(|e| self.error(e))?;
                }
                None => {
                    table.remove(&content.0).map_err(|e| self.error(e))?;
                }
            }
        }
        write.commit().map_err(|e| self.error(e))
    }

    /// Every sale.
    pub fn sales(&self) -> Result<Vec<(ContentId, Sale)>, IndexError> {
        self.read_all(SALES, |key, reader| {
            let sale = Sale { price: reader.u64("price")?, seller: PublicKey::decode(reader)? };
            Ok((ContentId(*key), sale))
        })
    }

    /// Keeps the latest payment of a channel this node is paid through.
    pub fn save_selling(&self, channel: &Selling) -> Result<(), IndexError> {
        let mut value = channel.content.0.to_vec();
        put_bytes(&mut value, &channel.buyer);
        channel.paid.encode_to(&mut value);
        channel.payment.encode_to(&mut value);
        self.insert(SELLING, &outpoint_key(&channel.escrow), &value)
    }

    /// Forgets a channel this node was paid through (closed).
    pub fn forget_selling(&self, escrow: &OutPoint) -> Result<(), IndexError> {
        self.remove(SELLING, &outpoint_key(escrow))
    }

    /// Every channel this node is paid through.
    pub fn selling(&self) -> Result<Vec<Selling>, IndexError> {
        self.read_all(SELLING, |key, reader| {
            Ok(Selling {
                escrow: OutPoint::from_bytes(key)?,
                content: ContentId(reader.array("content")?),
                buyer: reader.bytes("peer", MAX_PEER_BYTES)?.to_vec(),
                paid: reader.u64("paid")?,
                payment: Transaction::decode(reader)?,
            })
        })
    }

    /// Keeps a channel this node pays through.
    pub fn save_buying(&self, channel: &Buying) -> Result<(), IndexError> {
        let mut value = channel.escrow.to_bytes();
        put_bytes(&mut value, &channel.seller);
        channel.price.encode_to(&mut value);
        channel.paid.encode_to(&mut value);
        self.insert(BUYING, &channel.content.0, &value)
    }

    /// Forgets the channel paying for `content` (the download ended, or the escrow is spent).
    pub fn forget_buying(&self, content: &ContentId) -> Result<(), IndexError> {
        self.remove(BUYING, &content.0)
    }

    /// The channel paying for `content`, if any.
    pub fn buying(&self, content: &ContentId) -> Result<Option<Buying>, IndexError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(BUYING).map_err(|e| self.error(e))?;
        let Some(value) = table.get(&content.0).map_err(|e| self.error(e))? else { return Ok(None) };
        let mut reader = Reader::new(value.value());
        let decoded = (|| {
            let escrow = OutPoint::decode(&mut reader)?;
            let seller = reader.bytes("peer", MAX_PEER_BYTES)?.to_vec();
            let price = reader.u64("price")?;
            let paid = reader.u64("paid")?;
            reader.finish()?;
            Ok::<_, DecodeError>(Buying { content: *content, escrow, seller, price, paid })
        })();
        decoded.map(Some).map_err(|e| self.corrupt(e))
    }

    fn insert<const N: usize>(
        &self,
        table: TableDefinition<&[u8; N], &[u8]>,
        key: &[u8; N],
        value: &[u8],
    ) -> Result<(), IndexError> {
        if value.len() > MAX_PAYMENT_BYTES + 256 {
            return Err(self.corrupt("record too large"));
        }
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        write.open_table(table).map_err(|e| self.error(e))?.insert(key, value).map_err(|e| self.error(e))?;
        write.commit().map_err(|e| self.error(e))
    }

    fn remove<const N: usize>(&self, table: TableDefinition<&[u8; N], &[u8]>, key: &[u8; N]) -> Result<(), IndexError> {
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        write.open_table(table).map_err(|e| self.error(e))?.remove(key).map_err(|e| self.error(e))?;
        write.commit().map_err(|e| self.error(e))
    }

    fn read_all<const N: usize, T>(
        &self,
        table: TableDefinition<&[u8; N], &[u8]>,
        decode: impl Fn(&[u8; N], &mut Reader<'_>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, IndexError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(table).map_err(|e| self.error(e))?;
        let mut all = Vec::new();
        for entry in table.iter().map_err(|e| self.error(e))? {
            let (key, value) = entry.map_err(|e| self.error(e))?;
            let mut reader = Reader::new(value.value());
            let decoded = decode(key.value(), &mut reader).and_then(|item| reader.finish().map(|()| item));
            all.push(decoded.map_err(|e| self.corrupt(e))?);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use peerchain_primitives::TxId;

    use super::*;

    #[test]
    fn sales_and_channels_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = Channels::path_in(dir.path());
        let sale = Sale { price: 5_000, seller: PublicKey([7; 32]) };
        let selling = Selling {
            escrow: OutPoint::new(TxId([1; 32]), 0),
            content: ContentId([2; 32]),
            buyer: vec![3; 38],
            paid: 1_250,
            payment: Transaction { version: 1, inputs: vec![], outputs: vec![], lock_time: 0 },
        };
        let buying = Buying {
            content: ContentId([4; 32]),
            escrow: OutPoint::new(TxId([5; 32]), 1),
            seller: vec![6],
            price: 10,
            paid: 9,
        };
        {
            let channels = Channels::open(&path).unwrap();
            channels.set_sale(ContentId([2; 32]), Some(sale)).unwrap();
            channels.set_sale(ContentId([8; 32]), Some(sale)).unwrap();
            channels.set_sale(ContentId([8; 32]), None).unwrap();
            channels.save_selling(&selling).unwrap();
            channels.save_buying(&buying).unwrap();
        }
        let channels = Channels::open(&path).unwrap();
        assert_eq!(channels.sales().unwrap(), vec![(ContentId([2; 32]), sale)]);
        assert_eq!(channels.selling().unwrap(), vec![selling.clone()]);
        assert_eq!(channels.buying(&buying.content).unwrap(), Some(buying.clone()));
        channels.forget_selling(&selling.escrow).unwrap();
        channels.forget_buying(&buying.content).unwrap();
        assert!(channels.selling().unwrap().is_empty());
        assert_eq!(channels.buying(&buying.content).unwrap(), None);
    }
}

//! The wallet's assets beyond the coin: tokens sent, burnt, issued and minted, and the
//! maker's side of an offer.

use peerchain_primitives::{
    Address, Amount, AssetId, FeeRate, KeyHash, Lock, OutPoint, TokenId, TokenMetadata, TxIn, TxOut,
};

use crate::builder::{self, Plan};
use crate::{DUST, Error, Payment, Spendable, Wallet, check_amount};

impl Wallet {
    /// [`Wallet::create_payment`] of any asset.
    #[allow(clippy::too_many_arguments)]
    pub fn send_asset(
        &mut self,
        to: &Address,
        asset: AssetId,
        amount: Amount,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        self.pay_lock(Lock::Key(to.key_hash), asset, amount, fee_rate, passphrase, tip_height, coinbase_maturity)
    }

    /// Pays `amount` of `asset` to any lock: a key, or a contract another party set up
    /// (from its address).
    #[allow(clippy::too_many_arguments)]
    pub fn pay_lock(
        &mut self,
        lock: Lock,
        asset: AssetId,
        amount: Amount,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        check_amount(asset, amount)?;
        let output = TxOut { asset, amount, lock };
        self.build(Plan::paying(vec![output], fee_rate), passphrase, tip_height, coinbase_maturity)
    }

    /// Burns `amount` of a token: an explicit burn output, which consensus counts as paid
    /// out and which never enters the UTXO set.
    pub fn burn(
        &mut self,
        asset: AssetId,
        amount: Amount,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        if amount == Amount::ZERO || !amount.is_valid_money() {
            return Err(Error::AmountTooLarge);
        }
        let output = TxOut { asset, amount, lock: Lock::Burn { data: Vec::new() } };
        self.build(Plan::paying(vec![output], fee_rate), passphrase, tip_height, coinbase_maturity)
    }

    /// Issues `supply` base units of a new token named by `metadata` to a fresh address of
    /// the wallet, and with `mint_right` the right to mint more. The token's id comes from
    /// the coin the issue spends first; it is returned with the transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn issue_token(
        &mut self,
        metadata: &TokenMetadata,
        supply: Amount,
        mint_right: bool,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<(TokenId, Payment), Error> {
        if !supply.is_valid_money() || (supply == Amount::ZERO && !mint_right) {
            return Err(Error::AmountTooLarge);
        }
        // The largest confirmed coin names the token: spent first, its id cannot recur.
        let first = self
            .spendable(tip_height, coinbase_maturity)
            .into_iter()
            .filter(|c| c.output.asset == AssetId::Coin && c.confirmed)
            .max_by_key(|c| c.output.amount)
            .ok_or(Error::InsufficientFunds { needed: DUST, available: Amount::ZERO })?;
        let token = TokenId::issued_by(&first.outpoint);
        let holder = self.address(true, passphrase)?.key_hash;
        let mut outputs = vec![TxOut {
            asset: AssetId::Token(token),
            amount: Amount::ZERO,
            lock: Lock::Burn { data: peerchain_primitives::Encode::to_bytes(metadata) },
        }];
        let mut created = Vec::new();
        if supply > Amount::ZERO {
            outputs.push(TxOut { asset: AssetId::Token(token), amount: supply, lock: Lock::Key(holder) });
            created.push((AssetId::Token(token), supply));
        }
        if mint_right {
            let right = Amount::from_units(1);
            outputs.push(TxOut { asset: AssetId::MintRight(token), amount: right, lock: Lock::Key(holder) });
            created.push((AssetId::MintRight(token), right));
        }
        let plan = Plan { must_spend: vec![first], created, ..Plan::paying(outputs, fee_rate) };
        let payment = self.build(plan, passphrase, tip_height, coinbase_maturity)?;
        Ok((token, payment))
    }

    /// Mints `amount` more of `token` with a mint right the wallet holds (kept in change).
    pub fn mint(
        &mut self,
        token: TokenId,
        amount: Amount,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        check_amount(AssetId::Token(token), amount)?;
        let right = self
            .spendable(tip_height, coinbase_maturity)
            .into_iter()
            .find(|c| c.output.asset == AssetId::MintRight(token))
            .ok_or(Error::InsufficientAsset {
                asset: AssetId::MintRight(token),
                needed: Amount::from_units(1),
                available: Amount::ZERO,
            })?;
        let holder = self.address(true, passphrase)?.key_hash;
        let output = TxOut { asset: AssetId::Token(token), amount, lock: Lock::Key(holder) };
        let plan = Plan {
            must_spend: vec![right],
            created: vec![(AssetId::Token(token), amount)],
            ..Plan::paying(vec![output], fee_rate)
        };
        self.build(plan, passphrase, tip_height, coinbase_maturity)
    }

    /// Signs the maker's side of an offer: the wallet's output `outpoint` given for `want`
    /// (paid to the wallet), valid until block `expiry`. Whoever completes it must put
    /// `want` at the input's index. Returns the signed input and the output it spends.
    pub fn sign_offer(
        &mut self,
        outpoint: &OutPoint,
        want: &TxOut,
        expiry: u32,
        passphrase: Option<&str>,
    ) -> Result<(TxIn, TxOut), Error> {
        let unlocked = self.keystore.unlock(passphrase)?;
        let view = self.view(0, 0);
        let output =
            self.ledger.output(outpoint).filter(|o| view.owner(o).is_some()).ok_or(Error::NotSpendable(*outpoint))?;
        let key_hash = view.owner(output).expect("filtered above");
        let key = self
            .keystore
            .find(&key_hash)
            .and_then(|(_, origin)| unlocked.key(origin))
            .ok_or(Error::MissingKey(key_hash))?;
        let coin = Spendable { outpoint: *outpoint, output: output.clone(), key_hash, confirmed: true };
        Ok((builder::sign_offer(&coin, want, expiry, &key, self.network()), coin.output))
    }

    /// A fresh receiving key hash of the wallet (for an offer's wanted output, say).
    pub fn fresh_key_hash(&mut self, passphrase: Option<&str>) -> Result<KeyHash, Error> {
        Ok(self.address(true, passphrase)?.key_hash)
    }
}

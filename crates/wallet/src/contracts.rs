//! Contracts the wallet is party to: escrows (buyer, seller, arbiter) and loans (lender,
//! borrower). Each step is one transaction laid out by the one builder; the shared path of
//! an escrow is signed by each party in turn on the same transaction.

use peerchain_primitives::{
    After, Amount, AssetId, FeeRate, KeyHash, Lock, OutPoint, PublicKey, SigHashMode, Signature, Transaction, TxIn,
    TxOut,
};

use crate::builder::{ContractPath, ContractSpend, Plan, SignedPair};
use crate::{Error, Payment, Wallet, check_amount};

/// A party's role in an escrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscrowRole {
    /// Paid in, refunded after the timeout, releases to the seller.
    Buyer,
    /// Paid out on release.
    Seller,
    /// Decides a dispute, with the party it rules for.
    Arbiter,
}

impl EscrowRole {
    /// The role's name, as the RPC shows it.
    pub fn name(self) -> &'static str {
        match self {
            EscrowRole::Buyer => "buyer",
            EscrowRole::Seller => "seller",
            EscrowRole::Arbiter => "arbiter",
        }
    }
}

/// The parties of an escrow lock: buyer (key 0, and the fallback), seller (key 1), arbiter
/// (key 2, if any).
pub fn escrow_parties(lock: &Lock) -> Option<(&[PublicKey], KeyHash, After)> {
    match lock {
        Lock::Escrow { threshold: 2, keys, after, fallback } if (2..=3).contains(&keys.len()) => {
            Some((keys, *fallback, *after))
        }
        _ => None,
    }
}

/// The lock of an escrow from `buyer` to `seller`, decided by both or by `arbiter` with
/// either, refundable to the buyer from `timeout` on.
pub fn escrow_lock(buyer: PublicKey, seller: PublicKey, arbiter: Option<PublicKey>, timeout: u32) -> Lock {
    let mut keys = vec![buyer, seller];
    keys.extend(arbiter);
    Lock::Escrow { threshold: 2, keys, after: After::Height(timeout), fallback: buyer.key_hash() }
}

/// A plan spending an escrow's shared path with the wallet's key `key` (at `index` of the
/// lock's keys) into `outputs`: half signed, for the other party to complete.
fn shared_spend(
    (escrow, output): (OutPoint, &TxOut),
    (key, index): (KeyHash, u8),
    outputs: Vec<TxOut>,
    fee_rate: FeeRate,
) -> Plan {
    let spend = ContractSpend {
        outpoint: escrow,
        output: output.clone(),
        key,
        path: ContractPath::Shared { index, threshold: 2 },
    };
    Plan { contracts: vec![spend], ..Plan::paying(outputs, fee_rate) }
}

impl Wallet {
    /// The wallet's role in an escrow output, if any.
    pub fn escrow_role(&self, output: &TxOut) -> Option<EscrowRole> {
        let (keys, _, _) = escrow_parties(&output.lock)?;
        let roles = [EscrowRole::Buyer, EscrowRole::Seller, EscrowRole::Arbiter];
        keys.iter().zip(roles).find(|(key, _)| self.owned.contains(&key.key_hash())).map(|(_, role)| role)
    }

    /// Signs a 32-byte digest (a dispute notice, say) with the wallet's key `hash`.
    pub fn sign_digest(&self, hash: &KeyHash, digest: &[u8; 32], passphrase: Option<&str>) -> Result<Signature, Error> {
        let unlocked = self.keystore.unlock(passphrase)?;
        let key =
            self.keystore.find(hash).and_then(|(_, origin)| unlocked.key(origin)).ok_or(Error::MissingKey(*hash))?;
        Ok(key.sign(digest))
    }

    /// The key the wallet lends and borrows under: its current receiving key (the one
    /// `wallet key` shows), so that its record of loans builds up under one key until the
    /// user moves to a new address.
    fn loan_identity(&mut self, passphrase: Option<&str>) -> Result<KeyHash, Error> {
        Ok(self.address(false, passphrase)?.key_hash)
    }

    /// A fresh public key of the wallet (a buyer's key of an escrow someone else funds).
    pub fn fresh_public_key(&mut self, passphrase: Option<&str>) -> Result<PublicKey, Error> {
        Ok(self.fresh_key(passphrase)?.1)
    }

    /// A fresh key of the wallet, with its public key.
    fn fresh_key(&mut self, passphrase: Option<&str>) -> Result<(KeyHash, PublicKey), Error> {
        let hash = self.fresh_key_hash(passphrase)?;
        let key = self.public_key(&hash).ok_or(Error::MissingKey(hash))?;
        Ok((hash, key))
    }

    /// Opens an escrow as the buyer: `amount` of `asset` locked for `seller` (and
    /// `arbiter`), refundable from block `timeout`. The escrow is output 0.
    #[allow(clippy::too_many_arguments)]
    pub fn open_escrow(
        &mut self,
        seller: PublicKey,
        arbiter: Option<PublicKey>,
        asset: AssetId,
        amount: Amount,
        timeout: u32,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        check_amount(asset, amount)?;
        let (_, buyer) = self.fresh_key(passphrase)?;
        let output = TxOut { asset, amount, lock: escrow_lock(buyer, seller, arbiter, timeout) };
        self.build(Plan::paying(vec![output], fee_rate), passphrase, tip_height, coinbase_maturity)
    }

    /// The escrow `escrow` (holding `output`) paid out whole to `to`, signed by the wallet's
    /// key of it: a transaction the second party completes with its own signature. The fee
    /// comes out of an escrow of coins, or from the wallet's coins for one of a token.
    #[allow(clippy::too_many_arguments)]
    pub fn escrow_payout(
        &mut self,
        escrow: OutPoint,
        output: &TxOut,
        to: KeyHash,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Transaction, Error> {
        let (keys, _, _) = escrow_parties(&output.lock).ok_or(Error::NotSpendable(escrow))?;
        let (index, key) = keys
            .iter()
            .enumerate()
            .find(|(_, k)| self.owned.contains(&k.key_hash()))
            .map(|(i, k)| (i as u8, k.key_hash()))
            .ok_or(Error::NotSpendable(escrow))?;
        let payout = TxOut { asset: output.asset, amount: output.amount, lock: Lock::Key(to) };
        let mut plan = shared_spend((escrow, output), (key, index), vec![payout], fee_rate);
        if output.asset == AssetId::Coin {
            plan.subtract_fee_from = Some(0);
        }
        Ok(self.build(plan, passphrase, tip_height, coinbase_maturity)?.tx)
    }

    /// A payment of a payment channel (an escrow of buyer and seller, coins only): `paid` to
    /// the seller's key, the rest less the fee back to the buyer's, signed by the wallet's
    /// buyer key. The seller closes the channel with the latest one, adding its signature.
    #[allow(clippy::too_many_arguments)]
    pub fn channel_payment(
        &mut self,
        escrow: OutPoint,
        output: &TxOut,
        paid: Amount,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Transaction, Error> {
        let (keys, _, _) = escrow_parties(&output.lock).ok_or(Error::NotSpendable(escrow))?;
        let buyer = keys[0].key_hash();
        if keys.len() != 2 || output.asset != AssetId::Coin || !self.owned.contains(&buyer) || paid >= output.amount {
            return Err(Error::NotSpendable(escrow));
        }
        let outputs = vec![
            TxOut { asset: AssetId::Coin, amount: paid, lock: Lock::Key(keys[1].key_hash()) },
            TxOut {
                asset: AssetId::Coin,
                amount: Amount::from_units(output.amount.units() - paid.units()),
                lock: Lock::Key(buyer),
            },
        ];
        let plan = Plan { subtract_fee_from: Some(1), ..shared_spend((escrow, output), (buyer, 0), outputs, fee_rate) };
        Ok(self.build(plan, passphrase, tip_height, coinbase_maturity)?.tx)
    }

    /// The buyer takes an escrow back alone, from its timeout on.
    pub fn escrow_refund(
        &mut self,
        escrow: OutPoint,
        output: &TxOut,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        let (_, fallback, _) = escrow_parties(&output.lock).ok_or(Error::NotSpendable(escrow))?;
        if !self.owned.contains(&fallback) {
            return Err(Error::NotSpendable(escrow));
        }
        let spend =
            ContractSpend { outpoint: escrow, output: output.clone(), key: fallback, path: ContractPath::Timeout };
        let to = self.fresh_key_hash(passphrase)?;
        let mut plan = Plan { contracts: vec![spend], ..Plan::paying(vec![], fee_rate) };
        if output.asset == AssetId::Coin {
            plan.outputs = vec![TxOut { asset: AssetId::Coin, amount: output.amount, lock: Lock::Key(to) }];
            plan.subtract_fee_from = Some(0);
        }
        self.build(plan, passphrase, tip_height, coinbase_maturity)
    }

    /// The collateral a lender wants for a loan offer: `collateral` of `collateral_asset`
    /// locked so that the borrower (named when it takes the offer) gets it back by repaying
    /// `repay` of `repay_asset` to a fresh key of this wallet, and the wallet claims it `term`
    /// blocks after the loan starts.
    pub fn loan_collateral(
        &mut self,
        collateral_asset: AssetId,
        collateral: Amount,
        repay_asset: AssetId,
        repay: Amount,
        term: u32,
        passphrase: Option<&str>,
    ) -> Result<TxOut, Error> {
        check_amount(collateral_asset, collateral)?;
        check_amount(repay_asset, repay)?;
        let lender = self.loan_identity(passphrase)?;
        let lock = Lock::Loan { borrower: KeyHash::ZERO, lender, repay_asset, repay_amount: repay, term };
        Ok(TxOut { asset: collateral_asset, amount: collateral, lock })
    }

    /// Takes a lender's offer: its signed principal input and the collateral it wants,
    /// locked with this wallet as the borrower. One transaction: the collateral is locked and
    /// the principal paid, or neither. The loan is output 0.
    #[allow(clippy::too_many_arguments)]
    pub fn take_loan(
        &mut self,
        principal_input: TxIn,
        principal: TxOut,
        collateral: TxOut,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        let mut wanted = collateral;
        let Lock::Loan { borrower, .. } = &mut wanted.lock else {
            return Err(Error::NotSpendable(principal_input.prev_out));
        };
        *borrower = self.loan_identity(passphrase)?;
        let pair = SignedPair { input: principal_input, spent: principal, output: wanted };
        let plan = Plan { signed: vec![pair], ..Plan::paying(vec![], fee_rate) };
        self.build(plan, passphrase, tip_height, coinbase_maturity)
    }

    /// Repays a loan as the borrower: the lender's due at the loan's index, the collateral
    /// back to the wallet, in one transaction the wallet signs alone.
    pub fn repay_loan(
        &mut self,
        loan: OutPoint,
        output: &TxOut,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        let Lock::Loan { borrower, lender, repay_asset, repay_amount, .. } = output.lock else {
            return Err(Error::NotSpendable(loan));
        };
        if !self.owned.contains(&borrower) {
            return Err(Error::NotSpendable(loan));
        }
        let pay = TxOut { asset: repay_asset, amount: repay_amount, lock: Lock::Key(lender) };
        let spend =
            ContractSpend { outpoint: loan, output: output.clone(), key: borrower, path: ContractPath::Repay { pay } };
        let plan = Plan { contracts: vec![spend], ..Plan::paying(vec![], fee_rate) };
        self.build(plan, passphrase, tip_height, coinbase_maturity)
    }

    /// Claims a loan's collateral as the lender, from the term's end on.
    pub fn claim_loan(
        &mut self,
        loan: OutPoint,
        output: &TxOut,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        let Lock::Loan { lender, .. } = output.lock else { return Err(Error::NotSpendable(loan)) };
        if !self.owned.contains(&lender) {
            return Err(Error::NotSpendable(loan));
        }
        let spend = ContractSpend { outpoint: loan, output: output.clone(), key: lender, path: ContractPath::Timeout };
        let plan = Plan { contracts: vec![spend], ..Plan::paying(vec![], fee_rate) };
        self.build(plan, passphrase, tip_height, coinbase_maturity)
    }
}

/// The signature mode every party signs a contract step with.
pub const CONTRACT_MODE: SigHashMode = SigHashMode::All;

//! Arm Statistical Profiling Extension (SPE) for spevisor.
//!
//! * [`regs`]: register bitfields, encodings, ID decoding; `regs::hw`
//!   (aarch64 only) has the thin `mrs`/`msr` accessors and the
//!   drain/restore sequence used by the world switch.
//! * [`packet`], [`dump`], [`record`], [`mod@encode`]: the packet codec, the
//!   `perf report -D` style dump, record assembly and record encoding.
//! * [`model`]: a software SPE unit for machines without SPE.
//! * [`frame`]: the framed console dump format shared with `spe-report`.
//!
//! `no_std`; the `std` feature adds `std::error::Error` impls.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

#[cfg(all(feature = "std", not(test)))]
extern crate std;

pub mod dump;
pub mod encode;
pub mod frame;
pub mod model;
pub mod packet;
pub mod record;
pub mod regs;
pub mod trbe;

pub use encode::{encode, EncodeError};
pub use packet::{decode, DecodeError, Packet};
pub use record::{Record, RecordAssembler};

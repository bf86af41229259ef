//! Unit tests of the durable watermark (`durable.rs`). They live beside it rather than inside
//! it because the loom model test compiles `durable.rs` itself against loom's primitives, which
//! only work inside a model.

use crate::durable::*;
use crate::{Result, WriteFault};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Wake;
use std::task::{Context, Poll, Waker};

struct Count(AtomicUsize);
impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll(f: &mut DurableFuture, waker: &Waker) -> Poll<Result<()>> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

#[test]
fn future_wakes_when_its_ticket_is_published() {
    let wm = Arc::new(Watermark::default());
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut f3 = DurableFuture::new(wm.clone(), CommitTicket(3));
    let mut f5 = DurableFuture::new(wm.clone(), CommitTicket(5));
    assert!(poll(&mut f3, &waker).is_pending());
    assert!(
        poll(&mut f3, &waker).is_pending(),
        "a second poll registers no duplicate"
    );
    assert!(poll(&mut f5, &waker).is_pending());
    wm.publish(4);
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "only ticket 3 was woken");
    assert!(matches!(poll(&mut f3, &waker), Poll::Ready(Ok(()))));
    assert!(poll(&mut f5, &waker).is_pending());
    wm.publish(2); // never goes backwards
    assert_eq!(wm.durable(), 4);
    wm.fail(WriteFault::Failed("disk gone".into()));
    assert!(matches!(poll(&mut f5, &waker), Poll::Ready(Err(_))));
    assert!(matches!(
        poll(&mut DurableFuture::new(wm.clone(), CommitTicket(1)), &waker),
        Poll::Ready(Ok(()))
    ));
    assert!(matches!(
        poll(&mut DurableFuture::new(wm, CommitTicket::DURABLE), &waker),
        Poll::Ready(Ok(()))
    ));
}

#[test]
fn blocking_wait_returns_once_published() {
    let wm = Arc::new(Watermark::default());
    let wm2 = wm.clone();
    let t = std::thread::spawn(move || wm2.wait(CommitTicket(7)));
    std::thread::sleep(std::time::Duration::from_millis(20));
    wm.publish(7);
    assert!(t.join().unwrap().is_ok());
    let wm3 = wm.clone();
    let t = std::thread::spawn(move || wm3.wait(CommitTicket(8)));
    std::thread::sleep(std::time::Duration::from_millis(20));
    wm.fail(WriteFault::Failed("io".into()));
    assert!(t.join().unwrap().is_err());
}

#[test]
fn recovery_keeps_the_tickets_not_durable_at_the_failure_lost() {
    let wm = Arc::new(Watermark::default());
    let waker = Waker::noop();
    wm.publish(3);
    wm.fail(WriteFault::DiskFull("No space left on device".into()));
    // Tickets 4..=6 were handed out when the engine recovered.
    wm.recover(6);
    assert!(wm.failure().is_none());
    assert_eq!(wm.durable(), 6);
    for t in 4..=6 {
        assert!(wm.wait(CommitTicket(t)).unwrap_err().is_disk_full(), "{t}");
        assert!(matches!(
            poll(&mut DurableFuture::new(wm.clone(), CommitTicket(t)), waker),
            Poll::Ready(Err(_))
        ));
    }
    assert!(wm.wait(CommitTicket(3)).is_ok());
    // Later tickets are waited for and published as usual, and a later publish never makes
    // a lost ticket durable.
    let mut f8 = DurableFuture::new(wm.clone(), CommitTicket(8));
    assert!(poll(&mut f8, waker).is_pending());
    wm.publish(9);
    assert!(matches!(poll(&mut f8, waker), Poll::Ready(Ok(()))));
    assert!(wm.wait(CommitTicket(5)).is_err());
    // A second failure and recovery add a second range.
    wm.fail(WriteFault::Failed("io".into()));
    assert!(wm.wait(CommitTicket(10)).is_err());
    wm.recover(11);
    assert!(wm.wait(CommitTicket(10)).is_err());
    assert!(wm.wait(CommitTicket(5)).is_err());
    assert!(wm.wait(CommitTicket(9)).is_ok());
    wm.publish(12);
    assert!(wm.wait(CommitTicket(12)).is_ok());
}

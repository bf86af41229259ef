//! Unit tests of the durable watermark (`durable.rs`). They live beside it rather than inside
//! it because the loom model test compiles `durable.rs` itself against loom's primitives, which
//! only work inside a model.

use crate::durable::*;
use crate::Result;
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
    wm.fail("disk gone".into());
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
    wm.fail("io".into());
    assert!(t.join().unwrap().is_err());
}

//! A free thread takes the most urgent queued task first.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use offload::Priority;
use support::bounded;

fn recorder() -> (Arc<Mutex<Vec<String>>>, impl Fn(String) + Clone) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    (log, move |s| l.lock().unwrap().push(s))
}

#[tokio::test]
async fn smoke() {
    let pool = support::pool(1, 1000);
    let busy = support::occupy(&pool);
    let (log, push) = recorder();
    let mut handles = Vec::new();
    for i in 0..300 {
        let push = push.clone();
        handles.push(
            pool.run(move || push(format!("low{i}")))
                .priority(Priority::Low)
                .try_submit()
                .unwrap(),
        );
    }
    let p = push.clone();
    handles.push(
        pool.run(move || p("high".into()))
            .priority(Priority::High)
            .try_submit()
            .unwrap(),
    );
    busy.release().await;
    bounded(async {
        for h in handles {
            h.await.unwrap();
        }
    })
    .await;
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 301);
    assert_eq!(log[0], "high", "the High task must start next");
    let lows: Vec<_> = (0..300).map(|i| format!("low{i}")).collect();
    assert_eq!(log[1..], lows[..], "equal priorities keep submission order");
}

#[tokio::test]
async fn priorities_order_high_then_normal_then_low() {
    let pool = support::pool(1, 64);
    let busy = support::occupy(&pool);
    let (log, push) = recorder();
    let mut handles = Vec::new();
    for (i, prio) in [Priority::Low, Priority::Normal, Priority::High]
        .into_iter()
        .cycle()
        .take(12)
        .enumerate()
    {
        let push = push.clone();
        handles.push(
            pool.run(move || push(format!("{prio:?}{i}")))
                .priority(prio)
                .try_submit()
                .unwrap(),
        );
    }
    busy.release().await;
    bounded(async {
        for h in handles {
            h.await.unwrap();
        }
    })
    .await;
    let log = log.lock().unwrap().join(" ");
    assert_eq!(
        log,
        "High2 High5 High8 High11 Normal1 Normal4 Normal7 Normal10 Low0 Low3 Low6 Low9"
    );
}

//! The thumbnail as an offload task: name, serde, pool and inline runs.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use offload::{Pool, Task};
use offload_tasks::thumbnail::{Fit, Format, Limits, Thumbnail, ThumbnailOptions, thumbnail};
use offload_tasks::{ThumbnailError, ThumbnailOutput};
use support::thumbnail::{decode, fixture};
use support::within;

#[tokio::test]
async fn smoke() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::builder().threads(2).build()?;
    let out = within(pool.run(Thumbnail::fit(fixture("seeding_1200x675.jpg"), 256, 256))).await??;
    assert_eq!((out.width, out.height), (256, 144));
    assert_eq!(decode(&out.bytes).dimensions(), (256, 144));
    Ok(())
}

#[test]
fn name_is_stable() {
    assert_eq!(Thumbnail::fit(Vec::new(), 1, 1).name(), "thumbnail");
}

#[test]
fn cost_is_the_input_length() {
    assert_eq!(Thumbnail::fit(vec![0; 1234], 1, 1).cost(), 1234);
}

#[tokio::test]
async fn pool_returns_the_same_bytes_as_inline_calls() {
    let pool = Pool::builder().threads(2).build().unwrap();
    let src = fixture("seeding_1200x675.jpg");
    let boxes = [(64, 64), (128, 200), (300, 100), (256, 256)];
    let mut handles = Vec::new();
    for (w, h) in boxes {
        handles.push(pool.run(Thumbnail::fit(src.clone(), w, h).cover()));
    }
    for ((w, h), run) in boxes.into_iter().zip(handles) {
        let pooled = within(run).await.unwrap().unwrap();
        let inline = Thumbnail::fit(src.clone(), w, h).cover().run().unwrap();
        let mut options = ThumbnailOptions::new(w, h);
        options.fit = Fit::Cover;
        let via_fn = thumbnail(&src, &options);
        assert_eq!((pooled.width, pooled.height), (w, h));
        assert_eq!(pooled, inline);
        assert_eq!(via_fn.unwrap(), inline);
    }
}

#[tokio::test]
async fn errors_come_back_through_the_pool() {
    // The inline pool runs the task on this thread; a pool of one thread sends it across.
    for pool in [Pool::inline(), Pool::builder().threads(1).build().unwrap()] {
        let err = within(pool.run(Thumbnail::fit(b"GIF89a".to_vec(), 10, 10)))
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.is_undecodable(), "{err:?}");
    }
}

#[test]
fn task_and_output_are_serde_data() {
    let task = Thumbnail::fit(fixture("astronaut_200.png"), 32, 48)
        .exact()
        .format(Format::WebP)
        .quality(70)
        .background([1, 2, 3])
        .allow_upscale(true)
        .limits(Limits {
            max_pixels: 1_000_000,
            ..Limits::default()
        });
    let json = serde_json::to_string(&task).unwrap();
    let back: Thumbnail = serde_json::from_str(&json).unwrap();
    assert_eq!(back, task);
    assert_eq!(back.options().quality, 70);
    assert_eq!(back.options().background, [1, 2, 3]);

    let out: ThumbnailOutput = back.run().unwrap();
    let json = serde_json::to_vec(&out).unwrap();
    let again: ThumbnailOutput = serde_json::from_slice(&json).unwrap();
    assert_eq!(again, out);
    assert_eq!(
        (again.width, again.height, again.format),
        (32, 48, Format::WebP)
    );
}

#[test]
fn task_is_send_and_static() {
    fn assert_task<T: Task + Send + 'static>() {}
    assert_task::<Thumbnail>();
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<ThumbnailError>();
}

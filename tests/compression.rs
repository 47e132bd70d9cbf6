//! Producers compress: topics written with gzip, lz4, snappy and zstd are
//! all consumed. On librdkafka's mock cluster (the service reaches it over
//! TCP like any broker), because tansu 0.6 cannot serve snappy batches from
//! its sqlite storage (its fetch fails with `UnexpectedType("Snappy")`).

use std::time::Duration;

use closeloop_tests::{eventually, sample_lines, Options, TestEnv};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_producer_compression_is_consumed() {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    let env = TestEnv::new(Options {
        partitions: 4,
        kafka: Some(cluster.bootstrap_servers()),
        ..Options::default()
    })
    .await;
    cluster.create_topic(&env.topic, 4, 1).unwrap();
    cluster.create_topic(&env.dead_letter_topic, 4, 1).unwrap();
    let _service = env
        .start_service_with(&[("CLOSELOOP__KAFKA__CREATE_TOPICS", "false")])
        .await;

    let lines = sample_lines(400);
    let codecs = ["gzip", "lz4", "snappy", "zstd"];
    for (codec, chunk) in codecs.iter().zip(lines.chunks(100)) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("compression.type", *codec)
            // Batches of several messages, so the codec really applies.
            .set("linger.ms", "50")
            .create()
            .unwrap_or_else(|e| panic!("a {codec} producer: {e}"));
        let sends: Vec<_> = chunk
            .iter()
            .map(|line| {
                let key = serde_json::from_str::<serde_json::Value>(line).unwrap()["customer"]
                    ["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let producer = producer.clone();
                let topic = env.topic.clone();
                let line = line.clone();
                async move {
                    producer
                        .send(
                            FutureRecord::to(&topic).key(&key).payload(&line),
                            Duration::from_secs(10),
                        )
                        .await
                        .map_err(|(e, _)| e)
                }
            })
            .collect();
        for result in futures::future::join_all(sends).await {
            result.unwrap_or_else(|e| panic!("{codec}: {e}"));
        }
    }
    eventually(
        "every compressed event stored",
        Duration::from_secs(60),
        || async { (env.count("SELECT count(*) FROM feedback_events").await == 400).then_some(()) },
    )
    .await;
    // Each codec's events, by their position in the sample.
    for (codec, chunk) in codecs.iter().zip(lines.chunks(100)) {
        let ids: Vec<String> = chunk
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let stored: i64 =
            sqlx::query_scalar("SELECT count(*) FROM feedback_events WHERE event_id = ANY($1)")
                .bind(&ids)
                .fetch_one(&env.db)
                .await
                .unwrap();
        assert_eq!(stored, 100, "{codec}");
    }
}

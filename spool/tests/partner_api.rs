//! The partner API's spool side (issue 17) on both backends: tokens by
//! hash, deposits registered once per tracking id and per bytes, a
//! partner's flows and webhooks invisible to another, webhook posts owed
//! once with a stored backoff, and a migrated spool keeping its rows.

mod support;

use std::time::Duration;

use quai_spool::api::*;
use quai_spool::*;
use support::Db;

both!(
    tokens_by_hash_and_revocation,
    deposits_once_per_tracking_id_and_bytes,
    a_group_commits_together_and_repeats_within_it_are_the_first,
    rooms_and_search_paging,
    webhook_posts_owed_once_with_backoff,
    flows_in_once_per_name_with_their_posts,
    old_flows_in_are_purged_unless_a_post_waits,
);

fn flow(partner: &str, sha: &str) -> NewFlow {
    NewFlow {
        partner: partner.into(),
        origin: Origin::Api,
        original_name: "inv.xml".into(),
        size: 10,
        sha256: sha.into(),
        as2_message_id: None,
    }
}

fn meta(tracking: Option<&str>) -> ApiFlowMeta {
    ApiFlowMeta {
        tracking_id: tracking.map(str::to_owned),
        name: "inv.xml".into(),
        flow_syntax: "UBL".into(),
        ..ApiFlowMeta::default()
    }
}

async fn tokens_by_hash_and_revocation(db: Db) {
    let s = db.spool("t").await;
    let id = s.create_api_token("acme", Some("erp"), "aa").await.unwrap();
    let found = s.api_token_by_hash("aa").await.unwrap().unwrap();
    assert_eq!((found.0, found.1.as_str()), (id, "acme"));
    assert!(s.api_token_by_hash("bb").await.unwrap().is_none());
    assert!(s.revoke_api_token(id).await.unwrap());
    assert!(!s.revoke_api_token(id).await.unwrap());
    assert!(s.api_token_by_hash("aa").await.unwrap().is_none());
    let listed = s.list_api_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());
}

async fn deposits_once_per_tracking_id_and_bytes(db: Db) {
    let s = db.spool("t").await;
    let a = s
        .register_api_flow(&flow("acme", "h1"), &meta(Some("T1")))
        .await
        .unwrap();
    let ApiRegistration::New(id) = a else {
        panic!("{a:?}")
    };
    // Same tracking id, other bytes: the original.
    assert_eq!(
        s.register_api_flow(&flow("acme", "h2"), &meta(Some("T1")))
            .await
            .unwrap(),
        ApiRegistration::Existing(id)
    );
    // Same bytes, no tracking id: the original.
    assert_eq!(
        s.register_api_flow(&flow("acme", "h1"), &meta(None))
            .await
            .unwrap(),
        ApiRegistration::Existing(id)
    );
    // Another partner's same tracking id and bytes: its own flow.
    let b = s
        .register_api_flow(&flow("beta", "h1"), &meta(Some("T1")))
        .await
        .unwrap();
    assert!(matches!(b, ApiRegistration::New(other) if other != id));
    let row = s.flow(id).await.unwrap();
    assert_eq!(row.origin, Origin::Api);
    assert_eq!(row.state, FlowState::Received);
    let got = s.api_flow("acme", id).await.unwrap().unwrap();
    assert_eq!(got.meta.unwrap().tracking_id.as_deref(), Some("T1"));
    assert!(s.api_flow("beta", id).await.unwrap().is_none());
    // An API flow's acknowledgement goes to the API destination.
    let lease = Lease {
        duration: Duration::from_secs(60),
    };
    let claimed = s.claim_flow(lease).await.unwrap().unwrap();
    s.finish_flow_owing(
        claimed.id,
        &FlowOutcome::Processed,
        0,
        &[NewAck {
            kind: AckKind::IntegrationReport,
            to: Destination::Api {
                partner: claimed.partner.clone(),
            },
            file_name: "x.report".into(),
        }],
    )
    .await
    .unwrap();
    let acks = s.acks_of_flow(claimed.id).await.unwrap();
    assert_eq!(
        acks[0].to,
        Destination::Api {
            partner: claimed.partner
        }
    );
}

fn deposit(partner: &str, sha: &str, tracking: Option<&str>) -> ApiDeposit {
    ApiDeposit {
        flow: flow(partner, sha),
        meta: meta(tracking),
    }
}

async fn a_group_commits_together_and_repeats_within_it_are_the_first(db: Db) {
    let s = db.spool("t").await;
    let before = s
        .register_api_flow(&flow("acme", "h0"), &meta(Some("T0")))
        .await
        .unwrap();
    let ApiRegistration::New(first) = before else {
        panic!("{before:?}")
    };
    let group = s
        .register_api_flows(&[
            deposit("acme", "h1", Some("T1")),
            // Same bytes as the one before it in the group.
            deposit("acme", "h1", None),
            // Same tracking id as the first of the group, other bytes.
            deposit("acme", "h2", Some("T1")),
            // Repeats of an earlier group: by tracking id, by bytes.
            deposit("acme", "h9", Some("T0")),
            deposit("acme", "h0", None),
            // Another partner's same bytes and tracking id: its own.
            deposit("beta", "h1", Some("T1")),
            ApiDeposit {
                meta: ApiFlowMeta {
                    sha256_given: true,
                    flow_profile: Some("CIUS".into()),
                    processing_rule: Some("B2B".into()),
                    ..meta(Some("T3"))
                },
                ..deposit("acme", "h3", Some("T3"))
            },
        ])
        .await
        .unwrap();
    let r = &group.registrations;
    assert_eq!(r.len(), 7);
    let ApiRegistration::New(a) = r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(r[1], ApiRegistration::Existing(a));
    assert_eq!(r[2], ApiRegistration::Existing(a));
    assert_eq!(r[3], ApiRegistration::Existing(first));
    assert_eq!(r[4], ApiRegistration::Existing(first));
    let ApiRegistration::New(b) = r[5] else {
        panic!("{r:?}")
    };
    let ApiRegistration::New(c) = r[6] else {
        panic!("{r:?}")
    };
    assert!(a != b && b != c && a != c && a != first);
    // One commit: every new flow has the group's time.
    for id in [a, b, c] {
        let row = s.flow(id).await.unwrap();
        assert_eq!(row.state, FlowState::Received);
        assert_eq!(row.received_at, group.at);
    }
    assert_eq!(
        s.api_flow("beta", b)
            .await
            .unwrap()
            .unwrap()
            .meta
            .unwrap()
            .tracking_id
            .as_deref(),
        Some("T1")
    );
    let got = s.api_flow("acme", c).await.unwrap().unwrap();
    assert_eq!(got.flow.sha256, "h3");
    let m = got.meta.unwrap();
    assert_eq!(
        (
            m.tracking_id.as_deref(),
            m.sha256_given,
            m.flow_profile.as_deref(),
            m.processing_rule.as_deref()
        ),
        (Some("T3"), true, Some("CIUS"), Some("B2B"))
    );
    let m = s.api_flow("acme", a).await.unwrap().unwrap().meta.unwrap();
    assert_eq!(
        (m.tracking_id.as_deref(), m.sha256_given, m.name.as_str()),
        (Some("T1"), false, "inv.xml")
    );
    // Three flows of acme, one of beta: the repeats registered nothing.
    let all = |p: &'static str| {
        let s = s.clone();
        async move {
            s.search_api_flows(
                p,
                &ApiFlowSearch {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .len()
        }
    };
    assert_eq!(all("acme").await, 3);
    assert_eq!(all("beta").await, 1);
    // A NUL in the name is stored as the spool stores text, and said so.
    let mut m = meta(Some("T\0N"));
    m.name = "a\0b.xml".into();
    assert_eq!(m.as_stored().name, "a\u{FFFD}b.xml");
    let ApiRegistration::New(n) = s.register_api_flow(&flow("acme", "hn"), &m).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        s.api_flow("acme", n).await.unwrap().unwrap().meta,
        Some(m.as_stored())
    );
}

async fn rooms_and_search_paging(db: Db) {
    let s = db.spool("t").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = s
            .register_api_flow(
                &flow("acme", &format!("h{i}")),
                &meta(Some(&format!("T{i}"))),
            )
            .await
            .unwrap();
        let ApiRegistration::New(id) = r else {
            panic!()
        };
        ids.push(id);
    }
    s.register_api_flow(&flow("beta", "hb"), &meta(None))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .search_api_flows(
                "acme",
                &ApiFlowSearch {
                    after,
                    limit: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|f| f.flow.id);
        seen.extend(page.iter().map(|f| f.flow.id));
    }
    assert_eq!(seen, ids);
    let one = s
        .search_api_flows(
            "acme",
            &ApiFlowSearch {
                tracking_id: Some("T3".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].flow.id, ids[3]);
    let pending = ApiFlowSearch {
        states: Some(vec![FlowState::Processed]),
        limit: 10,
        ..Default::default()
    };
    assert!(s
        .search_api_flows("acme", &pending)
        .await
        .unwrap()
        .is_empty());
}

async fn webhook_posts_owed_once_with_backoff(db: Db) {
    let s = db.spool("t").await;
    let ApiRegistration::New(id) = s
        .register_api_flow(&flow("acme", "h"), &meta(None))
        .await
        .unwrap()
    else {
        panic!()
    };
    let hook = ApiWebhook {
        id: "0b9b5c55-1111-4a4a-9a9a-000000000001".into(),
        partner: "acme".into(),
        callback_url: "http://127.0.0.1:1/hook".into(),
        signing_key: "a2V5".into(),
        flow_types: "[]".into(),
        flow_direction: None,
        ack_status: None,
        created_at: chrono::Utc::now(),
    };
    s.create_webhook(&hook).await.unwrap();
    assert!(s.webhooks_of("beta").await.unwrap().is_empty());
    assert!(!s.delete_webhook("beta", &hook.id).await.unwrap());
    assert_eq!(
        s.owe_webhook_posts(id, std::slice::from_ref(&hook.id))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.owe_webhook_posts(id, std::slice::from_ref(&hook.id))
            .await
            .unwrap(),
        0
    );
    let lease = Lease {
        duration: Duration::from_secs(60),
    };
    let posts = s.claim_due_webhook_posts(10, lease).await.unwrap();
    assert_eq!(posts.len(), 1);
    assert!(s
        .claim_due_webhook_posts(10, lease)
        .await
        .unwrap()
        .is_empty());
    s.webhook_post_failed(posts[0].id, "refused").await.unwrap();
    // Backed off: not due again at once.
    assert!(s
        .claim_due_webhook_posts(10, lease)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.webhook_post_counts().await.unwrap().pending, 1);
    assert!(s.delete_webhook("acme", &hook.id).await.unwrap());
    assert_eq!(
        s.webhook_post_counts().await.unwrap(),
        WebhookPostCounts::default()
    );
}

async fn flows_in_once_per_name_with_their_posts(db: Db) {
    let s = db.spool("t").await;
    let hook = ApiWebhook {
        id: "0b9b5c55-1111-4a4a-9a9a-000000000002".into(),
        partner: "acme".into(),
        callback_url: "http://127.0.0.1:1/hook".into(),
        signing_key: "a2V5".into(),
        flow_types: "[]".into(),
        flow_direction: Some("In".into()),
        ack_status: None,
        created_at: chrono::Utc::now(),
    };
    s.create_webhook(&hook).await.unwrap();
    let new = |name: &str, sha: &str, flow_type: &str| NewInboxFlow {
        partner: "acme".into(),
        name: name.into(),
        flow_syntax: "CII".into(),
        flow_type: flow_type.into(),
        sha256: sha.into(),
        size: 10,
        webhooks: vec![hook.id.clone()],
    };
    let InboxPut::New(a) = s
        .put_inbox_flow(&new("a.cii.xml", "s1", "SupplierInvoice"))
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    // Delivered again (after a crash): the same flow, no second post.
    assert_eq!(
        s.put_inbox_flow(&new("a.cii.xml", "s1", "SupplierInvoice"))
            .await
            .unwrap(),
        InboxPut::Existing(a)
    );
    assert_eq!(
        s.put_inbox_flow(&new("a.cii.xml", "other", "SupplierInvoice"))
            .await
            .unwrap(),
        InboxPut::Conflict("s1".into())
    );
    let InboxPut::New(b) = s
        .put_inbox_flow(&new("b.cdar.xml", "s2", "CustomerInvoiceLC"))
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    assert_eq!(s.webhook_post_counts().await.unwrap().pending, 2);
    let lease = Lease {
        duration: Duration::from_secs(60),
    };
    let mut posts = s.claim_due_webhook_posts(10, lease).await.unwrap();
    posts.sort_by_key(|p| p.inbox_id);
    assert_eq!(
        posts
            .iter()
            .map(|p| (p.flow_id, p.inbox_id))
            .collect::<Vec<_>>(),
        [(None, Some(a)), (None, Some(b))]
    );
    // Another partner sees none of them.
    assert!(s.inbox_flow("beta", a).await.unwrap().is_none());
    let all = InboxSearch {
        limit: 10,
        ..InboxSearch::default()
    };
    assert!(s.search_inbox_flows("beta", &all).await.unwrap().is_empty());
    // Paging and the type filter.
    let page = InboxSearch {
        limit: 1,
        ..InboxSearch::default()
    };
    let first = s.search_inbox_flows("acme", &page).await.unwrap();
    assert_eq!(first.iter().map(|f| f.id).collect::<Vec<_>>(), [a]);
    let next = InboxSearch {
        after: Some(a),
        ..page.clone()
    };
    let second = s.search_inbox_flows("acme", &next).await.unwrap();
    assert_eq!(second.iter().map(|f| f.id).collect::<Vec<_>>(), [b]);
    let lc = InboxSearch {
        flow_types: Some(vec!["CustomerInvoiceLC".into()]),
        ..all.clone()
    };
    let found = s.search_inbox_flows("acme", &lc).await.unwrap();
    assert_eq!(found.iter().map(|f| f.id).collect::<Vec<_>>(), [b]);
    // The first download is recorded once.
    assert!(s
        .inbox_flow("acme", a)
        .await
        .unwrap()
        .unwrap()
        .fetched_at
        .is_none());
    assert!(s.inbox_flow_fetched(a).await.unwrap());
    assert!(!s.inbox_flow_fetched(a).await.unwrap());
    assert!(s
        .inbox_flow("acme", a)
        .await
        .unwrap()
        .unwrap()
        .fetched_at
        .is_some());
}

async fn old_flows_in_are_purged_unless_a_post_waits(db: Db) {
    let s = db.spool("t").await;
    let hook = ApiWebhook {
        id: "0b9b5c55-1111-4a4a-9a9a-000000000003".into(),
        partner: "acme".into(),
        callback_url: "http://127.0.0.1:1/hook".into(),
        signing_key: "a2V5".into(),
        flow_types: "[]".into(),
        flow_direction: Some("In".into()),
        ack_status: None,
        created_at: chrono::Utc::now(),
    };
    s.create_webhook(&hook).await.unwrap();
    let put = |name: &str, sha: &str, webhooks: Vec<String>| {
        let new = NewInboxFlow {
            partner: "acme".into(),
            name: name.into(),
            flow_syntax: "UBL".into(),
            flow_type: "SupplierInvoice".into(),
            sha256: sha.into(),
            size: 10,
            webhooks,
        };
        let s = s.clone();
        async move {
            match s.put_inbox_flow(&new).await.unwrap() {
                InboxPut::New(id) => id,
                other => panic!("{other:?}"),
            }
        }
    };
    let fetched = put("a.ubl.xml", "s1", vec![]).await;
    let shared_1 = put("b.ubl.xml", "s2", vec![]).await;
    let _shared_2 = put("c.ubl.xml", "s2", vec![]).await;
    let announced = put("d.ubl.xml", "s3", vec![hook.id.clone()]).await;
    assert!(s.inbox_flow_fetched(fetched).await.unwrap());
    let earlier = chrono::Utc::now() - chrono::Duration::hours(1);
    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    // Nothing is older than an hour ago.
    assert_eq!(s.purgeable_inbox_flows(earlier).await.unwrap(), 0);
    assert_eq!(s.purge_inbox(earlier).await.unwrap(), InboxPurge::default());
    // Every flow but the one whose post still waits.
    assert_eq!(s.purgeable_inbox_flows(later).await.unwrap(), 3);
    let gone = s.purge_inbox(later).await.unwrap();
    assert_eq!(gone.flows, 3);
    assert_eq!(gone.unreferenced, ["s1", "s2"]);
    assert!(s.inbox_flow("acme", fetched).await.unwrap().is_none());
    assert!(s.inbox_flow("acme", shared_1).await.unwrap().is_none());
    assert!(s.inbox_flow("acme", announced).await.unwrap().is_some());
    // Once its post is delivered, it goes too, with the post.
    let lease = Lease {
        duration: Duration::from_secs(60),
    };
    let posts = s.claim_due_webhook_posts(10, lease).await.unwrap();
    assert_eq!(posts.len(), 1);
    s.webhook_post_delivered(posts[0].id).await.unwrap();
    let gone = s.purge_inbox(later).await.unwrap();
    assert_eq!(
        gone,
        InboxPurge {
            flows: 1,
            unreferenced: vec!["s3".into()]
        }
    );
    assert_eq!(s.webhook_post_counts().await.unwrap().pending, 0);
    assert!(s.inbox_flow("acme", announced).await.unwrap().is_none());
}

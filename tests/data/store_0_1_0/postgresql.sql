--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: store_0_1_0; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA store_0_1_0;


--
-- Name: f8a_job_failures_count_delete(); Type: FUNCTION; Schema: store_0_1_0; Owner: -
--

CREATE FUNCTION store_0_1_0.f8a_job_failures_count_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO f8a_counts (counter, shard, n) SELECT 'failures', pg_backend_pid() % 64, -1 * count(*) FROM changed GROUP BY 1 ON CONFLICT (counter, shard) DO UPDATE SET n = f8a_counts.n + excluded.n; RETURN NULL; END $$;


--
-- Name: f8a_job_failures_count_insert(); Type: FUNCTION; Schema: store_0_1_0; Owner: -
--

CREATE FUNCTION store_0_1_0.f8a_job_failures_count_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO f8a_counts (counter, shard, n) SELECT 'failures', pg_backend_pid() % 64, 1 * count(*) FROM changed GROUP BY 1 ON CONFLICT (counter, shard) DO UPDATE SET n = f8a_counts.n + excluded.n; RETURN NULL; END $$;


--
-- Name: f8a_jobs_count_delete(); Type: FUNCTION; Schema: store_0_1_0; Owner: -
--

CREATE FUNCTION store_0_1_0.f8a_jobs_count_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO f8a_counts (counter, shard, n) SELECT CASE WHEN changed.is_default THEN 'jobs:default' ELSE 'jobs:user' END, pg_backend_pid() % 64, -1 * count(*) FROM changed GROUP BY 1 ON CONFLICT (counter, shard) DO UPDATE SET n = f8a_counts.n + excluded.n; RETURN NULL; END $$;


--
-- Name: f8a_jobs_count_insert(); Type: FUNCTION; Schema: store_0_1_0; Owner: -
--

CREATE FUNCTION store_0_1_0.f8a_jobs_count_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO f8a_counts (counter, shard, n) SELECT CASE WHEN changed.is_default THEN 'jobs:default' ELSE 'jobs:user' END, pg_backend_pid() % 64, 1 * count(*) FROM changed GROUP BY 1 ON CONFLICT (counter, shard) DO UPDATE SET n = f8a_counts.n + excluded.n; RETURN NULL; END $$;


--
-- Name: f8a_jobs_count_move(); Type: FUNCTION; Schema: store_0_1_0; Owner: -
--

CREATE FUNCTION store_0_1_0.f8a_jobs_count_move() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO f8a_counts (counter, shard, n) VALUES (CASE WHEN OLD.is_default THEN 'jobs:default' ELSE 'jobs:user' END, pg_backend_pid() % 64, -1), (CASE WHEN NEW.is_default THEN 'jobs:default' ELSE 'jobs:user' END, pg_backend_pid() % 64, 1) ON CONFLICT (counter, shard) DO UPDATE SET n = f8a_counts.n + excluded.n; RETURN NULL; END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: f8a_backfill_runs; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_backfill_runs (
    backfill_id character varying(36) NOT NULL,
    seq integer NOT NULL,
    scheduled_at timestamp with time zone NOT NULL,
    run_id character varying(36)
);


--
-- Name: f8a_backfills; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_backfills (
    backfill_id character varying(36) NOT NULL,
    job_id character varying(191) NOT NULL,
    concurrency integer NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: f8a_buffered_runs; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_buffered_runs (
    job_id character varying(191) NOT NULL,
    scheduled_at timestamp with time zone NOT NULL
);


--
-- Name: f8a_counts; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_counts (
    counter character varying(32) NOT NULL,
    shard integer NOT NULL,
    n bigint NOT NULL
);


--
-- Name: f8a_failure_streaks; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_failure_streaks (
    job_id character varying(191) NOT NULL,
    failures integer NOT NULL
);


--
-- Name: f8a_job_failures; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_job_failures (
    failure_id character varying(36) NOT NULL,
    failed_job_id character varying(191) NOT NULL,
    handler character varying(191) NOT NULL,
    kwargs json,
    error text NOT NULL,
    traceback text,
    failed_at timestamp with time zone NOT NULL
);


--
-- Name: f8a_job_runs; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_job_runs (
    id bigint NOT NULL,
    job_id character varying(191) NOT NULL,
    handler character varying(191) NOT NULL,
    outcome character varying(16) NOT NULL,
    scheduled_at timestamp with time zone,
    started_at timestamp with time zone,
    finished_at timestamp with time zone NOT NULL,
    duration_s double precision,
    summary json,
    error text,
    failure_id character varying(36)
);


--
-- Name: f8a_job_runs_id_seq; Type: SEQUENCE; Schema: store_0_1_0; Owner: -
--

CREATE SEQUENCE store_0_1_0.f8a_job_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: f8a_job_runs_id_seq; Type: SEQUENCE OWNED BY; Schema: store_0_1_0; Owner: -
--

ALTER SEQUENCE store_0_1_0.f8a_job_runs_id_seq OWNED BY store_0_1_0.f8a_job_runs.id;


--
-- Name: f8a_jobs; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_jobs (
    id character varying(191) NOT NULL,
    next_run_time double precision,
    job_state bytea NOT NULL,
    handler character varying(191) NOT NULL,
    is_default boolean NOT NULL,
    broken text
);


--
-- Name: f8a_outbox; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_outbox (
    id bigint NOT NULL,
    kind character varying(16) NOT NULL,
    name character varying(64) NOT NULL,
    message_id character varying(36) NOT NULL,
    command_id character varying(128),
    reply_to character varying(255),
    correlation_id character varying(255),
    body text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    published_at timestamp with time zone,
    replica character varying(128)
);


--
-- Name: f8a_outbox_id_seq; Type: SEQUENCE; Schema: store_0_1_0; Owner: -
--

CREATE SEQUENCE store_0_1_0.f8a_outbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: f8a_outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: store_0_1_0; Owner: -
--

ALTER SEQUENCE store_0_1_0.f8a_outbox_id_seq OWNED BY store_0_1_0.f8a_outbox.id;


--
-- Name: f8a_replicas; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_replicas (
    replica_id character varying(128) NOT NULL,
    host character varying(255) NOT NULL,
    pid integer NOT NULL,
    version character varying(64) NOT NULL,
    started_at timestamp with time zone NOT NULL,
    heartbeat_at timestamp with time zone NOT NULL
);


--
-- Name: f8a_run_ledger; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_run_ledger (
    run_id character varying(36) NOT NULL,
    job_id character varying(191) NOT NULL,
    handler character varying(191) NOT NULL,
    kwargs json NOT NULL,
    scheduled_at timestamp with time zone NOT NULL,
    submitted_at timestamp with time zone NOT NULL,
    on_interrupt character varying(16) NOT NULL,
    worker character varying(128) NOT NULL
);


--
-- Name: f8a_scheduler_state; Type: TABLE; Schema: store_0_1_0; Owner: -
--

CREATE TABLE store_0_1_0.f8a_scheduler_state (
    key character varying(64) NOT NULL,
    value character varying(255) NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: f8a_job_runs id; Type: DEFAULT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_job_runs ALTER COLUMN id SET DEFAULT nextval('store_0_1_0.f8a_job_runs_id_seq'::regclass);


--
-- Name: f8a_outbox id; Type: DEFAULT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_outbox ALTER COLUMN id SET DEFAULT nextval('store_0_1_0.f8a_outbox_id_seq'::regclass);


--
-- Data for Name: f8a_backfill_runs; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_backfill_runs VALUES ('backfill-pending', 0, '2026-12-06 22:00:00+00', NULL);


--
-- Data for Name: f8a_backfills; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_backfills VALUES ('backfill-pending', 'hourly', 1, '2026-12-06 23:00:00+00');


--
-- Data for Name: f8a_buffered_runs; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_buffered_runs VALUES ('failing', '2026-12-06 23:30:00+00');


--
-- Data for Name: f8a_counts; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_counts VALUES ('failures', 0, 0);
INSERT INTO store_0_1_0.f8a_counts VALUES ('jobs:user', 0, 0);
INSERT INTO store_0_1_0.f8a_counts VALUES ('jobs:default', 0, 0);
INSERT INTO store_0_1_0.f8a_counts VALUES ('jobs:default', 36, 1);
INSERT INTO store_0_1_0.f8a_counts VALUES ('jobs:user', 43, 4);
INSERT INTO store_0_1_0.f8a_counts VALUES ('jobs:user', 40, 3);
INSERT INTO store_0_1_0.f8a_counts VALUES ('failures', 40, 1);
INSERT INTO store_0_1_0.f8a_counts VALUES ('jobs:user', 46, 1);


--
-- Data for Name: f8a_failure_streaks; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_failure_streaks VALUES ('failing', 1);


--
-- Data for Name: f8a_job_failures; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_job_failures VALUES ('48ef0ba7-8b8d-46ec-86c1-6a00d0602ed4', 'failing', 'fail', '{"message": "boom"}', 'RuntimeError: boom', 'Traceback (most recent call last):
  File "/work/base/f8a_jobs_worker/scheduling/runner.py", line 197, in _run_once
    summary = self.registry.get(handler)(context).execute(**entry.kwargs) or {}
              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/base/tests/plugins/f8a_jobs_test_handlers.py", line 56, in execute
    raise RuntimeError(message)
RuntimeError: boom
', '2026-12-07 02:28:29.726158+00');


--
-- Data for Name: f8a_job_runs; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_job_runs VALUES (1, 'failing', 'fail', 'failed', '2026-12-07 02:28:29.721587+00', '2026-12-07 02:28:29.724552+00', '2026-12-07 02:28:29.726158+00', 0.001606, 'null', 'RuntimeError: boom', '48ef0ba7-8b8d-46ec-86c1-6a00d0602ed4');
INSERT INTO store_0_1_0.f8a_job_runs VALUES (2, 'once', 'noop', 'executed', '2026-12-07 02:28:29.742741+00', '2026-12-07 02:28:29.744646+00', '2026-12-07 02:28:29.744753+00', 0.000107, '{}', NULL, NULL);
INSERT INTO store_0_1_0.f8a_job_runs VALUES (3, 'from-command', 'noop', 'executed', '2026-12-06 20:00:00+00', '2026-12-07 02:28:29.76362+00', '2026-12-07 02:28:29.763656+00', 3.6e-05, '{}', NULL, NULL);
INSERT INTO store_0_1_0.f8a_job_runs VALUES (4, 'from-command', 'noop', 'executed', '2026-12-06 22:00:00+00', '2026-12-07 02:28:29.77433+00', '2026-12-07 02:28:29.774369+00', 3.9e-05, '{}', NULL, NULL);
INSERT INTO store_0_1_0.f8a_job_runs VALUES (5, 'from-command', 'noop', 'executed', '2026-12-07 00:00:00+00', '2026-12-07 02:28:29.787514+00', '2026-12-07 02:28:29.787583+00', 6.9e-05, '{}', NULL, NULL);


--
-- Data for Name: f8a_jobs; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_jobs VALUES ('nightly-default', 1796610600, '\x800595d4040000000000007d94288c0776657273696f6e944b018c026964948c0f6e696768746c792d64656661756c74948c0466756e63948c296638615f6a6f62735f776f726b65722e7363686564756c696e672e72756e6e65723a72756e5f6a6f62948c0774726967676572948c1961707363686564756c65722e74726967676572732e63726f6e948c0b43726f6e547269676765729493942981947d942868014b028c0874696d657a6f6e65948c086461746574696d65948c0874696d657a6f6e65949394680d8c0974696d6564656c74619493944b004b004b0087945294859452948c0a73746172745f6461746594680d8c086461746574696d65949394430a07ea0c07021c1d08be88946815869452948c08656e645f64617465944e8c066669656c6473945d94288c2061707363686564756c65722e74726967676572732e63726f6e2e6669656c6473948c09426173654669656c649493942981947d94288c046e616d65948c0479656172948c0a69735f64656661756c7494888c0b65787072657373696f6e73945d948c2561707363686564756c65722e74726967676572732e63726f6e2e65787072657373696f6e73948c0d416c6c45787072657373696f6e9493942981947d948c0473746570944e7362617562681f8c0a4d6f6e74684669656c649493942981947d942868248c056d6f6e74689468268968275d94682b2981947d94682e4e7362617562681f8c0f4461794f664d6f6e74684669656c649493942981947d942868248c036461799468268968275d94682b2981947d94682e4e7362617562681f8c095765656b4669656c649493942981947d942868248c047765656b9468268868275d94682b2981947d94682e4e7362617562681f8c0e4461794f665765656b4669656c649493942981947d942868248c0b6461795f6f665f7765656b9468268968275d94682b2981947d94682e4e736261756268212981947d942868248c04686f75729468268968275d9468298c0f52616e676545787072657373696f6e9493942981947d9428682e4e8c056669727374944b028c046c617374944b02756261756268212981947d942868248c066d696e7574659468268968275d9468542981947d9428682e4e68574b1e68584b1e756261756268212981947d942868248c067365636f6e649468268868275d9468542981947d9428682e4e68574b0068584b007562617562658c066a6974746572944e75628c086578656375746f72948c0764656661756c74948c0461726773948c046e6f6f70947d94286867888c0463726f6e948c0a33302032202a202a202a948c086465636c61726564947d94288c066a6f625f69649468038c0768616e646c65729468698c066b7761726773947d948c076d657373616765948c1966726f6d207468652064656661756c74206a6f622066696c659473686b686c8c126d6973666972655f67726163655f74696d65944d5802758c0c6f6e5f696e74657272757074948c067265706f7274948c1470617573655f61667465725f6661696c75726573944e8c076f7665726c6170948c04736b6970948c0d6f7665726c61705f6c696d6974944e75869468717d9468736874736824686968754d58028c08636f616c6573636594888c0d6d61785f696e7374616e636573944b018c0d6e6578745f72756e5f74696d65946818430a07ea0c07021e0000000094681586945294752e', 'noop', true, NULL);
INSERT INTO store_0_1_0.f8a_jobs VALUES ('weekdays', 1796623200.019742, '\x800595e9040000000000007d94288c0776657273696f6e944b018c026964948c087765656b64617973948c0466756e63948c296638615f6a6f62735f776f726b65722e7363686564756c696e672e72756e6e65723a72756e5f6a6f62948c0774726967676572948c1961707363686564756c65722e74726967676572732e63726f6e948c0b43726f6e547269676765729493942981947d942868014b028c0874696d657a6f6e65948c086461746574696d65948c0874696d657a6f6e65949394680d8c0974696d6564656c74619493944b004b004b0087945294859452948c0a73746172745f6461746594680d8c086461746574696d65949394430a07ea0c07021c1d096847946815869452948c08656e645f64617465944e8c066669656c6473945d94288c2061707363686564756c65722e74726967676572732e63726f6e2e6669656c6473948c09426173654669656c649493942981947d94288c046e616d65948c0479656172948c0a69735f64656661756c7494888c0b65787072657373696f6e73945d948c2561707363686564756c65722e74726967676572732e63726f6e2e65787072657373696f6e73948c0d416c6c45787072657373696f6e9493942981947d948c0473746570944e7362617562681f8c0a4d6f6e74684669656c649493942981947d942868248c056d6f6e74689468268968275d94682b2981947d94682e4e7362617562681f8c0f4461794f664d6f6e74684669656c649493942981947d942868248c036461799468268968275d94682b2981947d94682e4e7362617562681f8c095765656b4669656c649493942981947d942868248c047765656b9468268868275d94682b2981947d94682e4e7362617562681f8c0e4461794f665765656b4669656c649493942981947d942868248c0b6461795f6f665f7765656b9468268968275d942868298c165765656b64617952616e676545787072657373696f6e9493942981947d9428682e4e8c056669727374944b008c046c617374944b007562684e2981947d9428682e4e68514b0168524b017562684e2981947d9428682e4e68514b0268524b027562684e2981947d9428682e4e68514b0368524b037562684e2981947d9428682e4e68514b0468524b04756265756268212981947d942868248c04686f75729468268968275d9468298c0f52616e676545787072657373696f6e9493942981947d9428682e4e68514b0668524b06756261756268212981947d942868248c066d696e7574659468268968275d9468602981947d9428682e4e68514b0068524b00756261756268212981947d942868248c067365636f6e649468268868275d9468602981947d9428682e4e68514b0068524b007562617562658c066a6974746572944b1e75628c086578656375746f72948c0764656661756c74948c0461726773948c046e6f6f70947d94286871898c0463726f6e948c0b302036202a202a20312d35948c0c6f6e5f696e74657272757074948c067265706f7274948c1470617573655f61667465725f6661696c75726573944e8c076f7665726c6170948c04736b6970948c0d6f7665726c61705f6c696d6974944e7586948c066b7761726773947d94682468738c126d6973666972655f67726163655f74696d65944d100e8c08636f616c6573636594888c0d6d61785f696e7374616e636573944b018c0d6e6578745f72756e5f74696d65946818430a07ea0c07060000004d1e94681586945294752e', 'noop', false, NULL);
INSERT INTO store_0_1_0.f8a_jobs VALUES ('once', 1924992000, '\x800595d5010000000000007d94288c0776657273696f6e944b018c026964948c046f6e6365948c0466756e63948c296638615f6a6f62735f776f726b65722e7363686564756c696e672e72756e6e65723a72756e5f6a6f62948c0774726967676572948c1961707363686564756c65722e74726967676572732e64617465948c0b44617465547269676765729493942981947d942868014b018c0872756e5f64617465948c086461746574696d65948c086461746574696d65949394430a07ef010100000000000094680d8c0874696d657a6f6e65949394680d8c0974696d6564656c74619493944b004b004b0087945294859452948694529475628c086578656375746f72948c0764656661756c74948c0461726773948c046e6f6f70947d9428681c898c0463726f6e944e8c0c6f6e5f696e74657272757074948c067265706f7274948c1470617573655f61667465725f6661696c75726573944e8c076f7665726c6170948c04736b6970948c0d6f7665726c61705f6c696d6974944e7586948c066b7761726773947d948c046e616d6594681e8c126d6973666972655f67726163655f74696d65944d100e8c08636f616c6573636594888c0d6d61785f696e7374616e636573944b018c0d6e6578745f72756e5f74696d6594681a752e', 'noop', false, NULL);
INSERT INTO store_0_1_0.f8a_jobs VALUES ('paused', NULL, '\x8005951a020000000000007d94288c0776657273696f6e944b018c026964948c06706175736564948c0466756e63948c296638615f6a6f62735f776f726b65722e7363686564756c696e672e72756e6e65723a72756e5f6a6f62948c0774726967676572948c1d61707363686564756c65722e74726967676572732e696e74657276616c948c0f496e74657276616c547269676765729493942981947d942868014b028c0874696d657a6f6e65948c086461746574696d65948c0874696d657a6f6e65949394680d8c0974696d6564656c74619493944b004b004b0087945294859452948c0a73746172745f6461746594680d8c086461746574696d65949394430a07ea0c07021c1d09a1aa946815869452948c08656e645f64617465944e8c08696e74657276616c9468114b014b004b00879452948c066a6974746572944e75628c086578656375746f72948c0764656661756c74948c0461726773948c046e6f6f70947d94286822898c0463726f6e944e8c0c6f6e5f696e74657272757074948c067265706f7274948c1470617573655f61667465725f6661696c75726573944e8c076f7665726c6170948c04736b6970948c0d6f7665726c61705f6c696d6974944e7586948c066b7761726773947d948c046e616d659468248c126d6973666972655f67726163655f74696d65944d100e8c08636f616c6573636594888c0d6d61785f696e7374616e636573944b018c0d6e6578745f72756e5f74696d65944e752e', 'noop', false, NULL);
INSERT INTO store_0_1_0.f8a_jobs VALUES ('failing', 1930118400, '\x80059545020000000000007d94288c0776657273696f6e944b018c026964948c076661696c696e67948c0466756e63948c296638615f6a6f62735f776f726b65722e7363686564756c696e672e72756e6e65723a72756e5f6a6f62948c0774726967676572948c1d61707363686564756c65722e74726967676572732e696e74657276616c948c0f496e74657276616c547269676765729493942981947d942868014b028c0874696d657a6f6e65948c086461746574696d65948c0874696d657a6f6e65949394680d8c0974696d6564656c74619493944b004b004b0087945294859452948c0a73746172745f6461746594680d8c086461746574696d65949394430a07ef0301080000000000946815869452948c08656e645f64617465944e8c08696e74657276616c9468114b014b004b00879452948c066a6974746572944e75628c086578656375746f72948c0764656661756c74948c0461726773948c046661696c947d94286822898c0463726f6e944e8c0c6f6e5f696e74657272757074948c057265747279948c1470617573655f61667465725f6661696c75726573944b058c076f7665726c6170948c0a6275666665725f6f6e65948c0d6f7665726c61705f6c696d6974944e7586948c066b7761726773947d948c076d657373616765948c04626f6f6d94738c046e616d659468248c126d6973666972655f67726163655f74696d65944e8c08636f616c6573636594888c0d6d61785f696e7374616e636573944b018c0d6e6578745f72756e5f74696d65946818430a07ef030108000000000094681586945294752e', 'fail', false, NULL);
INSERT INTO store_0_1_0.f8a_jobs VALUES ('flows', NULL, '\x80059588020000000000007d94288c0776657273696f6e944b018c026964948c05666c6f7773948c0466756e63948c296638615f6a6f62735f776f726b65722e7363686564756c696e672e72756e6e65723a72756e5f6a6f62948c0774726967676572948c1d61707363686564756c65722e74726967676572732e696e74657276616c948c0f496e74657276616c547269676765729493942981947d942868014b028c0874696d657a6f6e65948c086461746574696d65948c0874696d657a6f6e65949394680d8c0974696d6564656c74619493944b004b004b0087945294859452948c0a73746172745f6461746594680d8c086461746574696d65949394430a07ef0301080000000000946815869452948c08656e645f64617465944e8c08696e74657276616c9468114b074b004b00879452948c066a6974746572944e75628c086578656375746f72948c0764656661756c74948c0461726773948c0f666c6f775f7363686564756c696e67947d94286822898c0463726f6e944e8c0c6f6e5f696e74657272757074948c067265706f7274948c1470617573655f61667465725f6661696c75726573944e8c076f7665726c6170948c05616c6c6f77948c0d6f7665726c61705f6c696d6974944b037586948c066b7761726773947d94288c0e666c6f775f617267756d656e7473945d947d94288c0965636f73797374656d948c036e706d948c046e616d65948c0c73657276652d7374617469639468018c05312e372e319475618c09666c6f775f6e616d65948c0c626179657369616e466c6f779475683568248c126d6973666972655f67726163655f74696d65944d100e8c08636f616c6573636594888c0d6d61785f696e7374616e636573944b038c0d6e6578745f72756e5f74696d65944e752e', 'flow_scheduling', false, NULL);
INSERT INTO store_0_1_0.f8a_jobs VALUES ('from-command', 1930118400, '\x80059535020000000000007d94288c0776657273696f6e944b018c026964948c0c66726f6d2d636f6d6d616e64948c0466756e63948c296638615f6a6f62735f776f726b65722e7363686564756c696e672e72756e6e65723a72756e5f6a6f62948c0774726967676572948c1d61707363686564756c65722e74726967676572732e696e74657276616c948c0f496e74657276616c547269676765729493942981947d942868014b028c0874696d657a6f6e65948c086461746574696d65948c0874696d657a6f6e65949394680d8c0974696d6564656c74619493944b004b004b0087945294859452948c0a73746172745f6461746594680d8c086461746574696d65949394430a07ef0301080000000000946815869452948c08656e645f64617465944e8c08696e74657276616c9468114b004d201c4b00879452948c066a6974746572944e75628c086578656375746f72948c0764656661756c74948c0461726773948c046e6f6f70947d94286822898c0463726f6e944e8c0c6f6e5f696e74657272757074948c067265706f7274948c1470617573655f61667465725f6661696c75726573944e8c076f7665726c6170948c04736b6970948c0d6f7665726c61705f6c696d6974944e7586948c066b7761726773947d948c046e616d659468248c126d6973666972655f67726163655f74696d65944d100e8c08636f616c6573636594888c0d6d61785f696e7374616e636573944b018c0d6e6578745f72756e5f74696d65946818430a07ef030108000000000094681586945294752e', 'noop', false, NULL);
INSERT INTO store_0_1_0.f8a_jobs VALUES ('hourly', 1930118400, '\x8005953c020000000000007d94288c0776657273696f6e944b018c026964948c06686f75726c79948c0466756e63948c296638615f6a6f62735f776f726b65722e7363686564756c696e672e72756e6e65723a72756e5f6a6f62948c0774726967676572948c1d61707363686564756c65722e74726967676572732e696e74657276616c948c0f496e74657276616c547269676765729493942981947d942868014b028c0874696d657a6f6e65948c086461746574696d65948c0874696d657a6f6e65949394680d8c0974696d6564656c74619493944b004b004b0087945294859452948c0a73746172745f6461746594680d8c086461746574696d65949394430a07ef0301080000000000946815869452948c08656e645f64617465944e8c08696e74657276616c9468114b004d100e4b00879452948c066a6974746572944e75628c086578656375746f72948c0764656661756c74948c0461726773948c046e6f6f70947d94286822898c0463726f6e944e8c0c6f6e5f696e74657272757074948c067265706f7274948c1470617573655f61667465725f6661696c75726573944e8c076f7665726c6170948c04736b6970948c0d6f7665726c61705f6c696d6974944e7586948c066b7761726773947d948c076d657373616765946803738c046e616d659468248c126d6973666972655f67726163655f74696d65944d100e8c08636f616c6573636594888c0d6d61785f696e7374616e636573944b018c0d6e6578745f72756e5f74696d65946818430a07ef030108000000000094681586945294752e', 'noop', false, NULL);
INSERT INTO store_0_1_0.f8a_jobs VALUES ('broken-by-deploy', 1924992000, '\x63676f6e655f6d6f64756c655f6f665f616e5f6f6c645f72656c656173650a5468696e670a2e', 'noop', false, NULL);


--
-- Data for Name: f8a_outbox; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_outbox VALUES (1, 'event', 'job.created', 'b616f351-3f2d-43ee-9d9d-78a51b2ed392', NULL, NULL, NULL, '{"event":"job.created","event_id":"b616f351-3f2d-43ee-9d9d-78a51b2ed392","at":"2026-12-07T02:28:29.581035+00:00","job_id":"nightly-default","job":{"job_id":"nightly-default","handler":"noop","kwargs":{"message":"from the default job file"},"state":"running","when":"2026-12-07T02:28:29.573064+00:00","periodically":null,"periodically_seconds":null,"cron":"30 2 * * *","jitter":null,"next_run_time":"2026-12-07T02:30:00+00:00","misfire_grace_time":600,"default":true,"on_interrupt":"report","pause_after_failures":null,"overlap":"skip","overlap_limit":null}}', '2026-12-07 02:28:29.581074+00', '2026-12-07 02:28:29.585619+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (2, 'event', 'job.created', 'd8202152-bbb4-49fc-a878-91a2b99af9e3', NULL, NULL, NULL, '{"event":"job.created","event_id":"d8202152-bbb4-49fc-a878-91a2b99af9e3","at":"2026-12-07T02:28:29.613531+00:00","job_id":"hourly","job":{"job_id":"hourly","handler":"noop","kwargs":{"message":"hourly"},"state":"running","when":"2031-03-01T08:00:00+00:00","periodically":"1:00:00","periodically_seconds":3600,"cron":null,"jitter":null,"next_run_time":"2031-03-01T08:00:00+00:00","misfire_grace_time":3600,"default":false,"on_interrupt":"report","pause_after_failures":null,"overlap":"skip","overlap_limit":null}}', '2026-12-07 02:28:29.61356+00', '2026-12-07 02:28:29.617913+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (3, 'event', 'job.created', '924aa866-2fe0-471b-baa4-763740a70ace', NULL, NULL, NULL, '{"event":"job.created","event_id":"924aa866-2fe0-471b-baa4-763740a70ace","at":"2026-12-07T02:28:29.622842+00:00","job_id":"weekdays","job":{"job_id":"weekdays","handler":"noop","kwargs":{},"state":"running","when":"2026-12-07T02:28:29.616519+00:00","periodically":null,"periodically_seconds":null,"cron":"0 6 * * 1-5","jitter":30,"next_run_time":"2026-12-07T06:00:00.019742+00:00","misfire_grace_time":3600,"default":false,"on_interrupt":"report","pause_after_failures":null,"overlap":"skip","overlap_limit":null}}', '2026-12-07 02:28:29.622877+00', '2026-12-07 02:28:29.626646+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (4, 'event', 'job.created', '41c4c7b9-6ec6-4302-b624-79fa5c1625ef', NULL, NULL, NULL, '{"event":"job.created","event_id":"41c4c7b9-6ec6-4302-b624-79fa5c1625ef","at":"2026-12-07T02:28:29.629320+00:00","job_id":"once","job":{"job_id":"once","handler":"noop","kwargs":{},"state":"running","when":"2031-01-01T00:00:00+00:00","periodically":null,"periodically_seconds":null,"cron":null,"jitter":null,"next_run_time":"2031-01-01T00:00:00+00:00","misfire_grace_time":3600,"default":false,"on_interrupt":"report","pause_after_failures":null,"overlap":"skip","overlap_limit":null}}', '2026-12-07 02:28:29.629355+00', '2026-12-07 02:28:29.632237+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (5, 'event', 'job.created', '9e537e15-8d4c-4c48-b6e2-c73394d8995a', NULL, NULL, NULL, '{"event":"job.created","event_id":"9e537e15-8d4c-4c48-b6e2-c73394d8995a","at":"2026-12-07T02:28:29.634006+00:00","job_id":"paused","job":{"job_id":"paused","handler":"noop","kwargs":{},"state":"paused","when":"2026-12-07T02:28:29.631210+00:00","periodically":"1 day, 0:00:00","periodically_seconds":86400,"cron":null,"jitter":null,"next_run_time":null,"misfire_grace_time":3600,"default":false,"on_interrupt":"report","pause_after_failures":null,"overlap":"skip","overlap_limit":null}}', '2026-12-07 02:28:29.634037+00', '2026-12-07 02:28:29.638418+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (6, 'event', 'job.created', '7dd59344-95d2-4187-bb49-f9c883693d2e', NULL, NULL, NULL, '{"event":"job.created","event_id":"7dd59344-95d2-4187-bb49-f9c883693d2e","at":"2026-12-07T02:28:29.639773+00:00","job_id":"failing","job":{"job_id":"failing","handler":"fail","kwargs":{"message":"boom"},"state":"running","when":"2031-03-01T08:00:00+00:00","periodically":"1 day, 0:00:00","periodically_seconds":86400,"cron":null,"jitter":null,"next_run_time":"2031-03-01T08:00:00+00:00","misfire_grace_time":null,"default":false,"on_interrupt":"retry","pause_after_failures":5,"overlap":"buffer_one","overlap_limit":null}}', '2026-12-07 02:28:29.639801+00', '2026-12-07 02:28:29.644101+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (9, 'reply', 'job.create', 'fdff9626-64cb-4d74-8734-20fcec395e9e', 'cmd-create-1', 'replies_a', 'corr-1', '{"command_id":"cmd-create-1","command":"job.create","ok":true,"result":{"job":{"job_id":"from-command","handler":"noop","kwargs":{},"state":"running","when":"2031-03-01T08:00:00+00:00","periodically":"2:00:00","periodically_seconds":7200,"cron":null,"jitter":null,"next_run_time":"2031-03-01T08:00:00+00:00","misfire_grace_time":3600,"default":false,"on_interrupt":"report","pause_after_failures":null,"overlap":"skip","overlap_limit":null}}}', '2026-12-07 02:28:29.653663+00', '2026-12-07 02:28:29.653663+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (11, 'reply', 'job.pause', '804e1f96-94df-4d0b-884f-08197bc4213f', 'cmd-pause-1', 'replies_a', 'corr-2', '{"command_id":"cmd-pause-1","command":"job.pause","ok":true,"result":{"job":{"job_id":"hourly","handler":"noop","kwargs":{"message":"hourly"},"state":"paused","when":"2031-03-01T08:00:00+00:00","periodically":"1:00:00","periodically_seconds":3600,"cron":null,"jitter":null,"next_run_time":null,"misfire_grace_time":3600,"default":false,"on_interrupt":"report","pause_after_failures":null,"overlap":"skip","overlap_limit":null}}}', '2026-12-07 02:28:29.656651+00', '2026-12-07 02:28:29.656651+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (12, 'reply', 'job.delete', '95ffa887-373e-4106-a697-519d5a774594', 'cmd-get-missing', 'replies_a', 'corr-3', '{"command_id":"cmd-get-missing","command":"job.delete","ok":false,"error":{"code":"job_not_found","message":"no job ''nope''","details":[]}}', '2026-12-07 02:28:29.658709+00', '2026-12-07 02:28:29.658709+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (8, 'event', 'job.created', '10a3b6a9-ee37-44a6-a812-2f0b8a9b8a76', NULL, NULL, NULL, '{"event":"job.created","event_id":"10a3b6a9-ee37-44a6-a812-2f0b8a9b8a76","at":"2026-12-07T02:28:29.652822+00:00","job_id":"from-command","job":{"job_id":"from-command","handler":"noop","kwargs":{},"state":"running","when":"2031-03-01T08:00:00+00:00","periodically":"2:00:00","periodically_seconds":7200,"cron":null,"jitter":null,"next_run_time":"2031-03-01T08:00:00+00:00","misfire_grace_time":3600,"default":false,"on_interrupt":"report","pause_after_failures":null,"overlap":"skip","overlap_limit":null}}', '2026-12-07 02:28:29.652858+00', '2026-12-07 02:28:29.66076+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (10, 'event', 'job.paused', '6285f980-7107-48a6-b905-b2a2c496b587', NULL, NULL, NULL, '{"event":"job.paused","event_id":"6285f980-7107-48a6-b905-b2a2c496b587","at":"2026-12-07T02:28:29.656153+00:00","job_id":"hourly"}', '2026-12-07 02:28:29.656179+00', '2026-12-07 02:28:29.66076+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (13, 'event', 'job.resumed', '3fd67ff0-d03e-44fc-b54a-f159bd06d608', NULL, NULL, NULL, '{"event":"job.resumed","event_id":"3fd67ff0-d03e-44fc-b54a-f159bd06d608","at":"2026-12-07T02:28:29.715441+00:00","job_id":"hourly"}', '2026-12-07 02:28:29.715487+00', '2026-12-07 02:28:29.718361+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (7, 'event', 'job.created', '3582aa0d-eda1-43fd-9d28-a08db97a709b', NULL, NULL, NULL, '{"event":"job.created","event_id":"3582aa0d-eda1-43fd-9d28-a08db97a709b","at":"2026-12-07T02:28:29.645869+00:00","job_id":"flows","job":{"job_id":"flows","handler":"flow_scheduling","kwargs":{"flow_arguments":[{"ecosystem":"npm","name":"serve-static","version":"1.7.1"}],"flow_name":"bayesianFlow"},"state":"paused","when":"2031-03-01T08:00:00+00:00","periodically":"7 days, 0:00:00","periodically_seconds":604800,"cron":null,"jitter":null,"next_run_time":null,"misfire_grace_time":3600,"default":false,"on_interrupt":"report","pause_after_failures":null,"overlap":"allow","overlap_limit":3}}', '2026-12-07 02:28:29.645902+00', '2026-12-07 02:28:29.649223+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (14, 'event', 'job.failed', '4b2ba3d8-fe06-4e7b-a576-0b8832b06d85', NULL, NULL, NULL, '{"event":"job.failed","event_id":"4b2ba3d8-fe06-4e7b-a576-0b8832b06d85","at":"2026-12-07T02:28:29.726282+00:00","job_id":"failing","handler":"fail","error":"RuntimeError: boom","traceback":"Traceback (most recent call last):\n  File \"/work/base/f8a_jobs_worker/scheduling/runner.py\", line 197, in _run_once\n    summary = self.registry.get(handler)(context).execute(**entry.kwargs) or {}\n              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/work/base/tests/plugins/f8a_jobs_test_handlers.py\", line 56, in execute\n    raise RuntimeError(message)\nRuntimeError: boom\n","failure_id":"48ef0ba7-8b8d-46ec-86c1-6a00d0602ed4","scheduled_run_time":"2026-12-07T02:28:29.721587+00:00","duration_s":0.000111}', '2026-12-07 02:28:29.732998+00', '2026-12-07 02:28:29.735887+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (15, 'event', 'job.executed', '0d51f227-088e-492d-bfca-36302c7a2e96', NULL, NULL, NULL, '{"event":"job.executed","event_id":"0d51f227-088e-492d-bfca-36302c7a2e96","at":"2026-12-07T02:28:29.744806+00:00","job_id":"once","handler":"noop","duration_s":8.9e-05,"summary":{},"scheduled_run_time":"2026-12-07T02:28:29.742741+00:00"}', '2026-12-07 02:28:29.746936+00', '2026-12-07 02:28:29.748689+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (16, 'event', 'job.executed', 'f0532a87-a5fe-4439-b163-02ba7acb5f3e', NULL, NULL, NULL, '{"event":"job.executed","event_id":"f0532a87-a5fe-4439-b163-02ba7acb5f3e","at":"2026-12-07T02:28:29.763686+00:00","job_id":"from-command","handler":"noop","duration_s":3.3e-05,"summary":{},"scheduled_run_time":"2026-12-06T20:00:00+00:00"}', '2026-12-07 02:28:29.764969+00', '2026-12-07 02:28:29.766907+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (17, 'event', 'job.executed', 'fcbf9355-239a-44d2-8b30-6d0802c143a8', NULL, NULL, NULL, '{"event":"job.executed","event_id":"fcbf9355-239a-44d2-8b30-6d0802c143a8","at":"2026-12-07T02:28:29.774400+00:00","job_id":"from-command","handler":"noop","duration_s":3.5e-05,"summary":{},"scheduled_run_time":"2026-12-06T22:00:00+00:00"}', '2026-12-07 02:28:29.775827+00', '2026-12-07 02:28:29.777946+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (18, 'event', 'job.executed', '0daf90ee-8535-4f37-a9b6-75c6f3889514', NULL, NULL, NULL, '{"event":"job.executed","event_id":"0daf90ee-8535-4f37-a9b6-75c6f3889514","at":"2026-12-07T02:28:29.787629+00:00","job_id":"from-command","handler":"noop","duration_s":6e-05,"summary":{},"scheduled_run_time":"2026-12-07T00:00:00+00:00"}', '2026-12-07 02:28:29.789693+00', '2026-12-07 02:28:29.791391+00', 'vm:27361:4e858a16');
INSERT INTO store_0_1_0.f8a_outbox VALUES (19, 'event', 'job.created', 'unsent-event-1', NULL, NULL, NULL, '{"event": "job.created", "event_id": "unsent-event-1", "at": "2026-12-06T23:00:00+00:00", "job_id": "hourly"}', '2026-12-06 23:00:00+00', NULL, 'gone-host:1:deadbeef');


--
-- Data for Name: f8a_replicas; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--



--
-- Data for Name: f8a_run_ledger; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_run_ledger VALUES ('gone-run-1', 'hourly', 'noop', '{"message": "hourly"}', '2026-12-06 23:00:00+00', '2026-12-06 23:00:01+00', 'report', 'gone-host:1:deadbeef');


--
-- Data for Name: f8a_scheduler_state; Type: TABLE DATA; Schema: store_0_1_0; Owner: -
--

INSERT INTO store_0_1_0.f8a_scheduler_state VALUES ('paused', 'false', '2026-12-07 02:28:29.551852+00');


--
-- Name: f8a_job_runs_id_seq; Type: SEQUENCE SET; Schema: store_0_1_0; Owner: -
--

SELECT pg_catalog.setval('store_0_1_0.f8a_job_runs_id_seq', 5, true);


--
-- Name: f8a_outbox_id_seq; Type: SEQUENCE SET; Schema: store_0_1_0; Owner: -
--

SELECT pg_catalog.setval('store_0_1_0.f8a_outbox_id_seq', 19, true);


--
-- Name: f8a_backfill_runs f8a_backfill_runs_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_backfill_runs
    ADD CONSTRAINT f8a_backfill_runs_pkey PRIMARY KEY (backfill_id, seq);


--
-- Name: f8a_backfills f8a_backfills_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_backfills
    ADD CONSTRAINT f8a_backfills_pkey PRIMARY KEY (backfill_id);


--
-- Name: f8a_buffered_runs f8a_buffered_runs_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_buffered_runs
    ADD CONSTRAINT f8a_buffered_runs_pkey PRIMARY KEY (job_id);


--
-- Name: f8a_counts f8a_counts_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_counts
    ADD CONSTRAINT f8a_counts_pkey PRIMARY KEY (counter, shard);


--
-- Name: f8a_failure_streaks f8a_failure_streaks_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_failure_streaks
    ADD CONSTRAINT f8a_failure_streaks_pkey PRIMARY KEY (job_id);


--
-- Name: f8a_job_failures f8a_job_failures_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_job_failures
    ADD CONSTRAINT f8a_job_failures_pkey PRIMARY KEY (failure_id);


--
-- Name: f8a_job_runs f8a_job_runs_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_job_runs
    ADD CONSTRAINT f8a_job_runs_pkey PRIMARY KEY (id);


--
-- Name: f8a_jobs f8a_jobs_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_jobs
    ADD CONSTRAINT f8a_jobs_pkey PRIMARY KEY (id);


--
-- Name: f8a_outbox f8a_outbox_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_outbox
    ADD CONSTRAINT f8a_outbox_pkey PRIMARY KEY (id);


--
-- Name: f8a_replicas f8a_replicas_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_replicas
    ADD CONSTRAINT f8a_replicas_pkey PRIMARY KEY (replica_id);


--
-- Name: f8a_run_ledger f8a_run_ledger_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_run_ledger
    ADD CONSTRAINT f8a_run_ledger_pkey PRIMARY KEY (run_id);


--
-- Name: f8a_scheduler_state f8a_scheduler_state_pkey; Type: CONSTRAINT; Schema: store_0_1_0; Owner: -
--

ALTER TABLE ONLY store_0_1_0.f8a_scheduler_state
    ADD CONSTRAINT f8a_scheduler_state_pkey PRIMARY KEY (key);


--
-- Name: ix_f8a_job_failures_failed_at; Type: INDEX; Schema: store_0_1_0; Owner: -
--

CREATE INDEX ix_f8a_job_failures_failed_at ON store_0_1_0.f8a_job_failures USING btree (failed_at);


--
-- Name: ix_f8a_job_runs_finished_at; Type: INDEX; Schema: store_0_1_0; Owner: -
--

CREATE INDEX ix_f8a_job_runs_finished_at ON store_0_1_0.f8a_job_runs USING btree (finished_at);


--
-- Name: ix_f8a_job_runs_job_id; Type: INDEX; Schema: store_0_1_0; Owner: -
--

CREATE INDEX ix_f8a_job_runs_job_id ON store_0_1_0.f8a_job_runs USING btree (job_id, id);


--
-- Name: ix_f8a_jobs_next_run_time; Type: INDEX; Schema: store_0_1_0; Owner: -
--

CREATE INDEX ix_f8a_jobs_next_run_time ON store_0_1_0.f8a_jobs USING btree (next_run_time);


--
-- Name: ix_f8a_outbox_created_at; Type: INDEX; Schema: store_0_1_0; Owner: -
--

CREATE INDEX ix_f8a_outbox_created_at ON store_0_1_0.f8a_outbox USING btree (created_at);


--
-- Name: ix_f8a_outbox_pending; Type: INDEX; Schema: store_0_1_0; Owner: -
--

CREATE INDEX ix_f8a_outbox_pending ON store_0_1_0.f8a_outbox USING btree (id) WHERE (published_at IS NULL);


--
-- Name: ix_f8a_run_ledger_job_id; Type: INDEX; Schema: store_0_1_0; Owner: -
--

CREATE INDEX ix_f8a_run_ledger_job_id ON store_0_1_0.f8a_run_ledger USING btree (job_id);


--
-- Name: ux_f8a_outbox_command_id; Type: INDEX; Schema: store_0_1_0; Owner: -
--

CREATE UNIQUE INDEX ux_f8a_outbox_command_id ON store_0_1_0.f8a_outbox USING btree (command_id);


--
-- Name: f8a_job_failures f8a_job_failures_count_delete; Type: TRIGGER; Schema: store_0_1_0; Owner: -
--

CREATE TRIGGER f8a_job_failures_count_delete AFTER DELETE ON store_0_1_0.f8a_job_failures REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION store_0_1_0.f8a_job_failures_count_delete();


--
-- Name: f8a_job_failures f8a_job_failures_count_insert; Type: TRIGGER; Schema: store_0_1_0; Owner: -
--

CREATE TRIGGER f8a_job_failures_count_insert AFTER INSERT ON store_0_1_0.f8a_job_failures REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION store_0_1_0.f8a_job_failures_count_insert();


--
-- Name: f8a_jobs f8a_jobs_count_delete; Type: TRIGGER; Schema: store_0_1_0; Owner: -
--

CREATE TRIGGER f8a_jobs_count_delete AFTER DELETE ON store_0_1_0.f8a_jobs REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION store_0_1_0.f8a_jobs_count_delete();


--
-- Name: f8a_jobs f8a_jobs_count_insert; Type: TRIGGER; Schema: store_0_1_0; Owner: -
--

CREATE TRIGGER f8a_jobs_count_insert AFTER INSERT ON store_0_1_0.f8a_jobs REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION store_0_1_0.f8a_jobs_count_insert();


--
-- Name: f8a_jobs f8a_jobs_count_move; Type: TRIGGER; Schema: store_0_1_0; Owner: -
--

CREATE TRIGGER f8a_jobs_count_move AFTER UPDATE OF is_default ON store_0_1_0.f8a_jobs FOR EACH ROW WHEN ((old.is_default IS DISTINCT FROM new.is_default)) EXECUTE FUNCTION store_0_1_0.f8a_jobs_count_move();


--
-- PostgreSQL database dump complete
--



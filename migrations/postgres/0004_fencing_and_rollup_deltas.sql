-- Fencing of the readings queue's partitions, and the hourly rollup kept apart from the writes.
--
-- Fencing. One worker at a time owns a partition of the readings queue, but a worker that was
-- paused may keep writing after another took its partition over. Each take-over advances the
-- partition's epoch in partition_epochs; a fenced batch write first calls
-- plm_hold_partitions, which share-locks the row of each partition it names and raises
-- SQLSTATE PLM01 unless the row holds the batch's epoch. The share lock is held until the
-- batch commits, and the take-over's UPDATE waits for it: once the epoch has advanced, no
-- write made under the earlier one can commit any more.
--
-- Rollup deltas. The batch writer no longer upserts reading_counts, whose rows every writer
-- of the same equipment and hour would lock in turn: it appends the counts of the readings it
-- inserted to reading_count_deltas, in the transaction that inserts them, and the aggregation
-- worker folds the deltas into reading_counts (DELETE ... RETURNING, then an upsert, in one
-- statement: a delta is folded once). CountByBucket adds the deltas not folded yet to the
-- rollup's hours, so it stays exact whether or not a fold has run.

-- +goose Up
CREATE TABLE partition_epochs (
    partition integer NOT NULL PRIMARY KEY,
    epoch     bigint  NOT NULL CHECK (epoch > 0)
);

-- plm_hold_partitions(partitions, epochs) share-locks, in the order of their numbers, the
-- row of each partition named (so that writers lock them in the same order) and raises
-- SQLSTATE PLM01 for the first whose epoch is not the one given with it, or that has none.
-- FOR SHARE waits for a take-over that is committing and then reads its epoch.
-- +goose StatementBegin
CREATE FUNCTION plm_hold_partitions(partitions integer[], epochs bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    fence record;
    held  bigint;
BEGIN
    IF cardinality(partitions) IS DISTINCT FROM cardinality(epochs) THEN
        RAISE EXCEPTION 'plm_hold_partitions: % partitions but % epochs',
            cardinality(partitions), cardinality(epochs);
    END IF;
    FOR fence IN
        SELECT f.partition, f.epoch FROM unnest(partitions, epochs) AS f (partition, epoch)
        ORDER BY f.partition, f.epoch
    LOOP
        SELECT e.epoch INTO held FROM partition_epochs e WHERE e.partition = fence.partition FOR SHARE;
        IF held IS DISTINCT FROM fence.epoch THEN
            RAISE EXCEPTION USING
                ERRCODE = 'PLM01',
                MESSAGE = format('partition %s is at epoch %s, the write was fenced at epoch %s',
                    fence.partition, coalesce(held::text, 'none'), fence.epoch);
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- Append-only: one row per (equipment, hour) of each batch that inserted readings. Folds
-- read it whole and empty it, and CountByBucket reads the few rows left between folds: no
-- index, which every batch would have to write.
CREATE TABLE reading_count_deltas (
    equipment_id text COLLATE "C" NOT NULL,
    hour         timestamptz      NOT NULL,
    readings     bigint           NOT NULL CHECK (readings > 0)
);

-- +goose Down
-- The writer of 0003 keeps reading_counts whole: the deltas not folded yet go into it first,
-- with the table locked so that no writer still running appends one after they are read.
LOCK TABLE reading_count_deltas IN ACCESS EXCLUSIVE MODE;
INSERT INTO reading_counts (equipment_id, hour, readings)
SELECT equipment_id, hour, sum(readings)
FROM reading_count_deltas
GROUP BY 1, 2
ON CONFLICT (equipment_id, hour) DO UPDATE SET readings = reading_counts.readings + excluded.readings;
DROP TABLE reading_count_deltas;
DROP FUNCTION plm_hold_partitions(integer[], bigint[]);
DROP TABLE partition_epochs;

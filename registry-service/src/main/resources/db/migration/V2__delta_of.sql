-- A stored delta names both models it relates: its base (relation delta) and the fine-tune it was taken from
-- (relation delta_of).
ALTER TABLE version_parent DROP CONSTRAINT version_parent_relation_check;
ALTER TABLE version_parent ADD CONSTRAINT version_parent_relation_check
    CHECK (relation IN ('finetune', 'merge', 'adapter', 'delta', 'delta_of', 'fisher_of'));

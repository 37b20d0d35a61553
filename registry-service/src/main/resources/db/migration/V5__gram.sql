-- RegMean's inputs: the Gram matrices of a checkpoint's linear layers' inputs (format gram, relation gram_of).
ALTER TABLE model_version DROP CONSTRAINT model_version_format_check;
ALTER TABLE model_version ADD CONSTRAINT model_version_format_check
    CHECK (format IN ('checkpoint', 'peft_adapter', 'delta', 'fisher', 'gram'));
ALTER TABLE version_parent DROP CONSTRAINT version_parent_relation_check;
ALTER TABLE version_parent ADD CONSTRAINT version_parent_relation_check
    CHECK (relation IN ('finetune', 'merge', 'adapter', 'delta', 'delta_of', 'fisher_of', 'gram_of'));

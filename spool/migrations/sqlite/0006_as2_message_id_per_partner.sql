-- An AS2 Message-ID identifies a message of one partner only: partner B
-- reusing partner A's Message-ID sends B's own new message, never a
-- duplicate of A's (issue 14, class 3). The uniqueness is per partner.
DROP INDEX IF EXISTS flows_as2_message_id;
CREATE UNIQUE INDEX flows_partner_as2_message_id ON flows(partner, as2_message_id)
    WHERE as2_message_id IS NOT NULL AND state <> 'duplicate';

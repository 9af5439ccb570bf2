import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

export type ApiKeyScope = 'infer' | 'batch' | 'admin';

/** An API key: only its SHA-256 is stored; the secret is shown once, at creation. */
@Entity({ name: 'api_key' })
export class ApiKeyEntity {
  /** Public id, also the key's lookup prefix (`tdm_<id>_<secret>`). */
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Index('ux_api_key_hash', { unique: true })
  @Column({ type: 'text' })
  hash!: string;

  @Column({ type: 'text', array: true })
  scopes!: ApiKeyScope[];

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @Column({ type: 'text', name: 'created_by' })
  createdBy!: string;

  @Column({ type: 'timestamptz', name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;
}

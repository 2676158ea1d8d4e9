//! The MongoDB store's documents (state, activity profile, agent profile): contents
//! inline or in chunks, read-modify-write in a transaction, scope deletes.
use super::*;

impl MongoStore {
    /// Reads a content, inline or chunked (in the session when one is given).
    pub(super) async fn content(
        &self,
        d: &BsonDoc,
        mut session: Option<&mut ClientSession>,
    ) -> Attempt<bytes::Bytes> {
        if let Some(data) = get_bytes(d, "data") {
            return Ok(bytes::Bytes::copy_from_slice(data));
        }
        let (Some(blob), Some(n)) = (get_str(d, "blob"), get_int(d, "chunks")) else {
            return Err(Fail::Corrupt("content without data or chunks".into()));
        };
        let len = get_int(d, "len").and_then(|l| usize::try_from(l).ok());
        let mut out = Vec::with_capacity(len.unwrap_or(0));
        for id in chunk_ids(blob, usize::try_from(n).unwrap_or(0)) {
            // One chunk per round trip keeps every reply far below the 16 MB limit.
            let find = self.chunks.find_one(doc! { "_id": &id });
            let chunk = match session.as_deref_mut() {
                Some(s) => find.session(s).await?,
                None => find.await?,
            };
            let chunk = chunk.ok_or_else(|| Fail::Corrupt(format!("chunk {id} is missing")))?;
            let data = get_bytes(&chunk, "data")
                .ok_or_else(|| Fail::Corrupt(format!("chunk {id} has no data")))?;
            out.extend_from_slice(data);
        }
        Ok(bytes::Bytes::from(out))
    }

    /// The chunks of a stored content (none when inline).
    pub(super) fn chunks_of(d: &BsonDoc) -> Vec<String> {
        match (get_str(d, "blob"), get_int(d, "chunks")) {
            (Some(blob), Some(n)) => chunk_ids(blob, usize::try_from(n).unwrap_or(0)),
            _ => Vec::new(),
        }
    }

    pub(super) async fn stored_document(
        &self,
        d: &BsonDoc,
        session: Option<&mut ClientSession>,
    ) -> Attempt<Document> {
        Ok(Document {
            content_type: get_str(d, "ct").unwrap_or("").to_owned(),
            content: self.content(d, session).await?,
            etag: get_str(d, "etag").unwrap_or("").to_owned(),
            updated_us: get_int(d, "updated").unwrap_or(0),
        })
    }

    pub(super) async fn update_body(
        &self,
        s: &mut ClientSession,
        key: &DocumentKey,
        update: &DocumentUpdate,
    ) -> Attempt<(Done, bool)> {
        let scope = key.scope_key();
        let filter =
            doc! { "dept": dept_value(&key.department), "scope": &scope, "doc": &key.document_id };
        let found = self
            .documents
            .find_one(filter.clone())
            .session(&mut *s)
            .await?;
        let current = match &found {
            Some(d) => Some(self.stored_document(d, Some(&mut *s)).await?),
            None => None,
        };
        let old_chunks = found.as_ref().map(Self::chunks_of).unwrap_or_default();
        match update(current.as_ref()).map_err(Fail::Rejected)? {
            DocumentChange::Keep => Ok((Done::Document(current), false)),
            DocumentChange::Delete => {
                if found.is_some() {
                    self.documents.delete_one(filter).session(&mut *s).await?;
                    self.delete_chunks(s, old_chunks).await?;
                }
                Ok((Done::Document(None), true))
            }
            DocumentChange::Put(doc) => {
                let blob = format!("d/{}", uuid::Uuid::new_v4().simple());
                let c = content_fields(&blob, &doc.content);
                let mut record = doc! {
                    "scope": &scope,
                    "doc": &key.document_id,
                    "dept": dept_value(&key.department),
                    "ct": &doc.content_type,
                    "etag": &doc.etag,
                    "updated": doc.updated_us,
                };
                record.extend(c.fields);
                self.delete_chunks(s, old_chunks).await?;
                for chunk in c.chunks {
                    self.chunks.insert_one(chunk).session(&mut *s).await?;
                }
                match &found {
                    Some(old) => {
                        let id = old.get("_id").cloned().unwrap_or(Bson::Null);
                        self.documents
                            .replace_one(doc! { "_id": id }, record)
                            .session(&mut *s)
                            .await?;
                    }
                    None => {
                        self.documents.insert_one(record).session(&mut *s).await?;
                    }
                }
                Ok((Done::Document(Some(doc)), true))
            }
        }
    }

    pub(super) async fn delete_chunks(
        &self,
        s: &mut ClientSession,
        ids: Vec<String>,
    ) -> Attempt<()> {
        if !ids.is_empty() {
            self.chunks
                .delete_many(doc! { "_id": { "$in": ids } })
                .session(&mut *s)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn delete_scope_body(
        &self,
        s: &mut ClientSession,
        department: &Department,
        scope: &DocumentScope,
    ) -> Attempt<(Done, bool)> {
        let mut cursor = self
            .documents
            .find(doc! { "dept": dept_value(department), "scope": scope_range(department, scope) })
            .projection(doc! { "blob": 1, "chunks": 1 })
            .hint(mongodb::options::Hint::Name(DOCUMENTS_INDEX.to_owned()))
            .session(&mut *s)
            .await?;
        let mut docs = Vec::new();
        while let Some(d) = cursor.next(&mut *s).await {
            docs.push(d?);
        }
        if docs.is_empty() {
            return Ok((Done::Unit, false));
        }
        let ids: Vec<Bson> = docs.iter().filter_map(|d| d.get("_id").cloned()).collect();
        let chunks: Vec<String> = docs.iter().flat_map(Self::chunks_of).collect();
        self.delete_chunks(s, chunks).await?;
        self.documents
            .delete_many(doc! { "_id": { "$in": ids } })
            .session(&mut *s)
            .await?;
        Ok((Done::Unit, true))
    }
}
